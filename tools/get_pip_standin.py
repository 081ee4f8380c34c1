"""Stand-in for get-pip.py in ansible-test's sanity virtual environments.

ansible-test downloads get-pip.py from a host this machine cannot reach; it
also accepts the script from its cache (~/.ansible/test/cache). This one gets
pip from Python's own ensurepip and then the requested pip from PyPI.
"""

import ensurepip
import os
import subprocess
import sys

args = [arg for arg in sys.argv[1:] if arg not in ("--no-setuptools", "--no-wheel")]
ensurepip.bootstrap(upgrade=True)
# ensurepip hides the machine's pip configuration (PIP_CONFIG_FILE=/dev/null);
# the upgrade needs it back (index, CA bundle of a TLS-inspecting proxy).
env = {key: value for key, value in os.environ.items() if key != "PIP_CONFIG_FILE"}
subprocess.check_call([sys.executable, "-m", "pip", "install", "--upgrade", *args], env=env)
