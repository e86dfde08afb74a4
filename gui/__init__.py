"""DenseLens's desktop app (PySide6).  All Qt code lives here; model work is delegated to ``model/``."""
