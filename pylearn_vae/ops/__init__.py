"""PyTensor operations of pylearn_vae that the maths needs: the convolutions'
patch copies (:mod:`pylearn_vae.ops.im2col`) and their JAX code. Their Numba
loops are a speed-up (:mod:`pylearn_vae.speedups.numba_im2col`); without
them PyTensor's Numba backend runs the operations' NumPy ``perform``.
"""
