"""The installed panel types. Adding one is a new module here and one entry below."""

from __future__ import annotations

from app.panels import channel, community_marac, dv_marac, prevention
from app.panels.base import PanelType

PANEL_TYPES: dict[str, PanelType] = {
    panel_type.key: panel_type
    for panel_type in (
        dv_marac.PANEL_TYPE,
        community_marac.PANEL_TYPE,
        channel.PANEL_TYPE,
        prevention.PREVENTION,
        prevention.GANGS,
    )
}


def get_panel_type(key: str) -> PanelType:
    return PANEL_TYPES[key]
