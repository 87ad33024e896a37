"""The Flask extensions, created unbound here and bound to each app by `kiosk.create_app`.

Creating them once at import time lets views and forms import them without importing the app,
and binding them with ``init_app`` lets tests build as many apps as they need.
"""

# Flask-WTF ships no type information (no py.typed marker and no stubs package).
from flask_wtf.csrf import CSRFProtect  # type: ignore[import-untyped]

csrf = CSRFProtect()
