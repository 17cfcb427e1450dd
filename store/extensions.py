"""Extensions of 400 numbers: which line a customer who dials ``main_num`` and keys
``ext_num`` is bridged to. A vendor routes a number to one place, so a main number belongs to
one tenant and each of its extensions to one line."""

from __future__ import annotations

from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, col, select

from store.db import now_ms
from store.models import Extension


class ExtensionTaken(Exception):
    """Another tenant has this main number (and so may have this extension)."""


def find_extension(session: Session, main_num: str, ext_num: str) -> Extension | None:
    """The extension, whichever tenant has it: what an inbound call to ``main_num`` (E.164)
    that keyed ``ext_num`` is routed by."""
    return session.exec(
        select(Extension).where(Extension.main_num == main_num, Extension.ext_num == ext_num)
    ).first()


def main_num_known(session: Session, main_num: str) -> str | None:
    """The tenant with extensions on ``main_num`` (E.164), or None: an inbound call to a known
    number is asked for its extension, one to an unknown number is refused."""
    return session.exec(select(Extension.tenant).where(Extension.main_num == main_num)).first()


def get_extension(session: Session, tenant: str, main_num: str, ext_num: str) -> Extension | None:
    found = find_extension(session, main_num, ext_num)
    return found if found is not None and found.tenant == tenant else None


def put_extension(
    session: Session,
    tenant: str,
    main_num: str,
    ext_num: str,
    channel: str,
    agent: str,
    phone: str,
) -> Extension:
    """Bind the extension to the line (``channel``, ``agent``) whose agent answers on
    ``phone`` (E.164), new or moved; ExtensionTaken if another tenant has ``main_num``."""
    owner = main_num_known(session, main_num)
    if owner is not None and owner != tenant:
        raise ExtensionTaken(f"{main_num} {ext_num}")
    extension = find_extension(session, main_num, ext_num)
    if extension is None:
        extension = Extension(
            tenant=tenant,
            main_num=main_num,
            ext_num=ext_num,
            channel=channel,
            agent=agent,
            phone=phone,
            updated=now_ms(),
        )
        try:
            with session.begin_nested():  # someone took the same extension meanwhile
                session.add(extension)
        except IntegrityError:
            extension = find_extension(session, main_num, ext_num)
            if extension is None or extension.tenant != tenant:
                raise ExtensionTaken(f"{main_num} {ext_num}") from None
    extension.channel, extension.agent, extension.phone = channel, agent, phone
    extension.updated = now_ms()
    session.add(extension)
    session.flush()
    return extension


def delete_extension(session: Session, extension: Extension) -> None:
    session.delete(extension)


def list_extensions(
    session: Session, tenant: str, main_num: str | None, after_id: int, limit: int
) -> list[Extension]:
    """A page of the tenant's extensions (of one main number, when given), by id."""
    query = select(Extension).where(Extension.tenant == tenant, col(Extension.id) > after_id)
    if main_num is not None:
        query = query.where(Extension.main_num == main_num)
    return list(session.exec(query.order_by(col(Extension.id)).limit(limit)).all())
