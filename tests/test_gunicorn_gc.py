"""Each gunicorn worker freezes its start-up objects once the app is built (CDS_GC_FREEZE, on by default)."""
from __future__ import annotations

import gc

import pytest

from cds_service import gunicorn_conf


@pytest.mark.parametrize("value, frozen", [(None, True), ("true", True), ("false", False)])
def test_post_worker_init_freezes_unless_turned_off(monkeypatch, value, frozen):
    if value is None:
        monkeypatch.delenv("CDS_GC_FREEZE", raising=False)
    else:
        monkeypatch.setenv("CDS_GC_FREEZE", value)
    gc.unfreeze()
    try:
        gunicorn_conf.post_worker_init(None)
        assert (gc.get_freeze_count() > 0) is frozen
    finally:
        gc.unfreeze()
