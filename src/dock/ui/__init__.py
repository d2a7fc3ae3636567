"""The armorer's view of the dock over HTTP: the local API (app.py) and the web page (page.py)."""
