"""The border switch's OpenFlow 1.3 controller (an os-ken app, Ryu API).

``controller.app`` is the app; ``controller.run`` starts it with
``AppManager.run_apps`` (PyPI's os-ken >= 4 has no osken-manager command).
"""
