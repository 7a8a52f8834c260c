"""Ahoy: the service that runs on the box.

`appliance.app.create_app(settings)` builds the Flask application; README's
table lists the modules. This file stays free of imports, so the terminal
client (`appliance.terminal`) loads without Flask.
"""

__version__ = "0.1.0"
