"""Where the repository's own files are, for tests that read the checkout (README, config/).

The package never looks at the source tree (it reads its shipped files through
:mod:`stairways.resources`); only tests about the checkout itself use this.
"""

from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]
README = REPO_ROOT / "README.md"
CHECKOUT_CONFIG_DIR = REPO_ROOT / "config"
