"""No tests are left here: train.py's hostile cases are in test_train.py, the data loader's in
test_loader.py and test_download.py, beside their normal cases, and the helpers they share in
conftest.py.

test_bad_inputs_predict.py still imports these helpers from this module; once it imports them
from conftest, delete this file.
"""
from conftest import (QUICK, ROOT, assert_fails, assert_no_traceback, child_env, flags,  # noqa: F401
                      run_script, show, snapshot)
