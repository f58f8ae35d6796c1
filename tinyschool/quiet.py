"""Dependencies' warnings and progress bars stay off the user's terminal.

A deprecation notice from transformers or torch ("`past_key_values` is deprecated ...") is meant for
whoever maintains the calling code, not for someone generating a corpus, and a second progress bar
("Loading weights") only competes with ours. `quiet_dependencies()`, called once by the command line,
ignores Python warnings and turns the libraries' own chatter down to errors, for this process and the
processes it starts (process pools, Ray workers inherit the environment). An explicit
`python -W ...` / PYTHONWARNINGS, or TINYSCHOOL_WARNINGS=1, leaves everything as it is.
"""
from __future__ import annotations

import os
import sys
import warnings

QUIET_ENV = {
    "PYTHONWARNINGS": "ignore",  # the interpreters this run starts
    "TRANSFORMERS_VERBOSITY": "error",
    "TRANSFORMERS_NO_ADVISORY_WARNINGS": "1",
    "HF_HUB_DISABLE_PROGRESS_BARS": "1",  # transformers' "Loading weights" bar reads it at import
    "TF_CPP_MIN_LOG_LEVEL": "2",  # TensorBoard's TensorFlow notices
}


def quiet_dependencies() -> bool:
    """Silence dependencies' warnings; False (and nothing changed) when the user asked for warnings."""
    if os.environ.get("TINYSCHOOL_WARNINGS") == "1" or sys.warnoptions:
        return False
    warnings.simplefilter("ignore")
    for k, v in QUIET_ENV.items():
        os.environ.setdefault(k, v)
    return True
