"""Start the controller: ``python -m tunnelwall.controller.run --config FILE``.

PyPI's os-ken >= 4.0 ships no ``osken-manager``, so the app is started the
way that command does it: parse os-ken's options, then
``AppManager.run_apps``.
"""

from __future__ import annotations

import argparse
import os
import sys

from tunnelwall.controller.config import ControllerConfig


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--config", required=True)
    args = ap.parse_args()
    config = ControllerConfig.read(args.config)            # read once here too: a bad file fails before os-ken starts
    os.environ["TUNNELWALL_CONTROLLER_CONFIG"] = os.path.abspath(args.config)
    from os_ken import cfg
    from os_ken import log as osken_log
    from os_ken.base.app_manager import AppManager
    from os_ken.lib import hub
    hub.patch(thread=True)
    cfg.CONF(args=["--ofp-listen-host", "127.0.0.1", "--ofp-tcp-listen-port", str(config.of_port)],
             project="os_ken")
    osken_log.init_log()
    print(f"tunnelwall controller: OpenFlow on 127.0.0.1:{config.of_port}, "
          f"API on 127.0.0.1:{config.api_port}, profile {config.profile}", flush=True)
    AppManager.run_apps(["tunnelwall.controller.app", "os_ken.controller.ofp_handler"])


if __name__ == "__main__":
    sys.exit(main())
