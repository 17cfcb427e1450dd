"""The demo tenant `make run` creates: an API key, a few agent lines on every channel and a
400 number, each provisioned to it as the platform operator would."""

from __future__ import annotations

from channels.registry import Settings
from core.types import ResourceKind
from store.db import make_engine, session_scope
from store.lines import ensure_line
from store.provisions import provision
from store.tenants import add_api_key, ensure_tenant, new_api_key

# Line ids and the numbers they show. e9 and jy lines are phone numbers; hw lines are seats
# of the CC-Gateway (the simulator's demo seats 10001-10003, signing in with
# CC_HW_SEAT_PASSWORD).
DEMO_LINES = {
    "e9": [(f"+8610880001{i:02d}", f"+8610880001{i:02d}") for i in range(3)],
    "hw": [(str(10001 + i), f"+8610880002{i:02d}") for i in range(3)],
    "jy": [(f"+8610880003{i:02d}", f"+8610880003{i:02d}") for i in range(3)],
}
# The README's inbound demo binds extensions on this 400 number.
DEMO_MAIN_NUMBERS = ["+864008001234"]


def seed_demo(settings: Settings) -> str:
    """Create (or keep) the demo tenant, its lines and its 400 number, provisioned to it;
    return its (admin) API key."""
    api_key = settings.demo_api_key or new_api_key()
    engine = make_engine(settings.database_url)
    with session_scope(engine) as session:
        ensure_tenant(session, settings.demo_tenant, "Demo tenant")
        add_api_key(session, settings.demo_tenant, api_key, scope="admin")
        for channel, lines in DEMO_LINES.items():
            for agent, number in lines:
                provision(session, settings.demo_tenant, ResourceKind.LINE, channel, agent)
                ensure_line(session, settings.demo_tenant, channel, agent, number)
        for main_num in DEMO_MAIN_NUMBERS:
            provision(session, settings.demo_tenant, ResourceKind.MAIN_NUM, "", main_num)
    engine.dispose()
    return api_key
