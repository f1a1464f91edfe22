from plugrad.nn import *  # noqa: F401,F403  (MegEngine spells it plugrad.module)
