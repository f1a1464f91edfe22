"""plugrad's core: tensors, dtypes, devices, the op registry and dispatch, plugins, the tape."""
