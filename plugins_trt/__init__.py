"""gandapt.plugins_trt: the ``gandapt::ModulatedConv2d`` TensorRT plugin (kernel and registration).

TensorRT and cuda-python are imported lazily by the functions that need them (extra ``[trt]``).
"""
