"""The Temporal contract of CC: what workflows, activities, intake, the API and the worker
agree on, and nothing else.

- ``ids``: task queue, workflow ids and type names, signal / query / update names, search
  attributes.
- ``errors``: the ``ApplicationError`` types activities raise and workflows read.
- ``call``, ``health``, ``inbox``: every workflow and activity input and output model.
- ``config``: those models' settings, built from ``Settings`` in one place.
- ``client``: the connection to Temporal (with the pydantic data converter).

Workflows import this package, never an activity module; callers name workflows, signals
and updates through it, never by importing a workflow class.
"""
