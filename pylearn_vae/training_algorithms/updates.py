r"""Update rules as pure functions over symbolic parameters and gradients.

Each function returns ``(updates, state)``: an ordered mapping from shared
variable to its new value, and the list of state shared variables it uses
(velocities, moment estimates), so that callers can checkpoint them.
``lr_scalers`` multiplies the learning rate per parameter. ``state_variable``
makes those shared variables: ``state_variable(param, suffix)`` returns the
one for ``param`` (None for a rule-wide scalar such as Adam's step count)
and ``suffix``; the default makes new zeros every time, and a caller that
compiles several functions for the same parameters passes one that returns
the same variable each time (see :class:`~pylearn_vae.training_algorithms.learning_rule.LearningRule`).
"""

from __future__ import annotations

from collections import OrderedDict

import numpy as np
import pytensor.tensor as pt

from pylearn_vae.utils import constantX, sharedX

__all__ = ["sgd_updates", "momentum_updates", "rmsprop_updates", "adam_updates", "new_state"]


def new_state(param, suffix: str):
    """A new zero state variable shaped like ``param`` (a scalar if ``param`` is None)."""
    if param is None:
        return sharedX(0.0, name=suffix)
    value = param.get_value(borrow=True)
    return sharedX(np.zeros(value.shape), name=f"{param.name}_{suffix}")


def _scaled_lr(learning_rate, param, lr_scalers):
    scale = (lr_scalers or {}).get(param, 1.0)
    return learning_rate * constantX(scale) if scale != 1.0 else learning_rate


def sgd_updates(grads, learning_rate, lr_scalers=None):
    r"""Plain gradient descent: :math:`p \leftarrow p - \eta g`."""
    updates = OrderedDict()
    for param, grad in grads.items():
        updates[param] = param - _scaled_lr(learning_rate, param, lr_scalers) * grad
    return updates, []


def momentum_updates(
    grads,
    learning_rate,
    momentum,
    lr_scalers=None,
    nesterov: bool = False,
    state_variable=new_state,
):
    r"""Classical (or Nesterov) momentum, as Pylearn2 defines it.

    .. math::
        v \leftarrow \mu v - \eta g, \qquad p \leftarrow p + v

    With ``nesterov``, :math:`p \leftarrow p + \mu v - \eta g` using the new
    :math:`v`.
    """
    updates = OrderedDict()
    state = []
    for param, grad in grads.items():
        lr = _scaled_lr(learning_rate, param, lr_scalers)
        velocity = state_variable(param, "velocity")
        state.append(velocity)
        new_velocity = momentum * velocity - lr * grad
        updates[velocity] = new_velocity
        step = momentum * new_velocity - lr * grad if nesterov else new_velocity
        updates[param] = param + step
    return updates, state


def rmsprop_updates(
    grads, learning_rate, decay=0.9, max_scaling=1e5, lr_scalers=None, state_variable=new_state
):
    r"""RMSProp: divide the step by a running root mean square of gradients.

    .. math::
        m \leftarrow \rho m + (1 - \rho) g^2, \qquad
        p \leftarrow p - \eta\, g / \max(\sqrt{m}, 1/s_{max})
    """
    updates = OrderedDict()
    state = []
    floor = constantX(1.0 / max_scaling)
    rho = constantX(decay)
    for param, grad in grads.items():
        mean_sq = state_variable(param, "mean_square")
        state.append(mean_sq)
        new_mean_sq = rho * mean_sq + (1.0 - rho) * pt.sqr(grad)
        updates[mean_sq] = new_mean_sq
        rms = pt.maximum(pt.sqrt(new_mean_sq), floor)
        updates[param] = param - _scaled_lr(learning_rate, param, lr_scalers) * grad / rms
    return updates, state


def adam_updates(
    grads,
    learning_rate,
    beta1=0.9,
    beta2=0.999,
    epsilon=1e-8,
    lr_scalers=None,
    state_variable=new_state,
):
    r"""Adam (Kingma and Ba, 2015) with bias-corrected moment estimates.

    .. math::
        m \leftarrow \beta_1 m + (1-\beta_1) g,\quad
        v \leftarrow \beta_2 v + (1-\beta_2) g^2,\quad
        p \leftarrow p - \eta \frac{m / (1-\beta_1^t)}{\sqrt{v / (1-\beta_2^t)} + \epsilon}
    """
    updates = OrderedDict()
    t = state_variable(None, "adam_t")
    state = [t]
    new_t = t + 1.0
    updates[t] = new_t
    b1, b2, eps = constantX(beta1), constantX(beta2), constantX(epsilon)
    correction1 = 1.0 - b1**new_t
    correction2 = 1.0 - b2**new_t
    for param, grad in grads.items():
        m = state_variable(param, "adam_m")
        v = state_variable(param, "adam_v")
        state.extend([m, v])
        new_m = b1 * m + (1.0 - b1) * grad
        new_v = b2 * v + (1.0 - b2) * pt.sqr(grad)
        updates[m] = new_m
        updates[v] = new_v
        step = (new_m / correction1) / (pt.sqrt(new_v / correction2) + eps)
        updates[param] = param - _scaled_lr(learning_rate, param, lr_scalers) * step
    return updates, state
