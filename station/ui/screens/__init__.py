"""Screens of the station UI, one module each (imported lazily by ``station.ui.app``)."""
