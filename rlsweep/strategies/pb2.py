"""PB2's explore step: a time-varying Gaussian process and GP-UCB, plus a bandit for categorical values.

Continuous values follow Parker-Holder et al., NeurIPS 2020 ("Provably Efficient Online
Hyperparameter Optimization with Population-Based Bandits"); categorical ones follow PB2-Mix,
NeurIPS 2021 ("Tuning Mixed Input Hyperparameters on the Fly for Efficient Population Based
AutoRL"). Pure functions over plain values; the GP is written with NumPy/SciPy only.
"""

from __future__ import annotations

import contextlib
import functools
import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

import numpy as np
from scipy.linalg import cho_factor, cho_solve
from scipy.optimize import minimize

from rlsweep.strategies.population import Param, describe_change

F = TypeVar("F", bound=Callable[..., Any])


def _one_blas_thread(func: F) -> F:
    """Run with a single BLAS thread: on 100 x 100 matrices OpenBLAS's threads only fight the
    trainers for the cores (measured 7-15x slower on a busy 2-core machine)."""

    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            from threadpoolctl import threadpool_limits
        except ImportError:  # optional: without it the fit is only slower under load
            limit: contextlib.AbstractContextManager[Any] = contextlib.nullcontext()
        else:
            limit = threadpool_limits(1, user_api="blas")
        with limit:
            return func(*args, **kwargs)

    return wrapper  # type: ignore[return-value]


@dataclass(frozen=True)
class Observation:
    """One finished interval of one member: its hyperparameters and how much its score improved.

    `change` must be "higher is better" (the caller negates it when the objective is minimised).
    `time` is when the interval ended, in any unit (steps, generations); the GP rescales it.
    """

    time: float
    config: Mapping[str, Any]
    change: float


@dataclass(frozen=True)
class KernelParams:
    lengthscale: float = 0.3  # of the squared exponential, in the [0, 1]-normalised hyperparameter space
    variance: float = 1.0  # signal variance (targets are normalised to unit variance)
    noise: float = 0.1  # observation noise variance
    epsilon: float = 0.1  # time-varying kernel (1 - eps) ** (|t - t'| / 2): how fast old data is forgotten


# Bounds of [log lengthscale, log variance, log noise, epsilon] for the marginal-likelihood fit.
_BOUNDS = [
    (math.log(0.1), math.log(5.0)),
    (math.log(0.05), math.log(20.0)),
    (math.log(1e-4), math.log(2.0)),
    (1e-6, 0.5),
]


class TimeVaryingGP:
    """GP regression with k((t,x),(t',x')) = s2 exp(-|x-x'|^2 / 2l^2) (1-eps)^(|t-t'|/2) + noise."""

    def __init__(
        self, t: np.ndarray, X: np.ndarray, y: np.ndarray, params: KernelParams, time_unit: float = 1.0
    ) -> None:
        self.t = np.asarray(t, dtype=float).reshape(-1)
        self.X = np.asarray(X, dtype=float).reshape(len(self.t), -1)
        self.y = np.asarray(y, dtype=float).reshape(-1)
        self.params = params
        self.time_unit = float(time_unit)
        # Targets are standardised so the kernel bounds mean the same on any reward scale.
        self.y_mean = float(self.y.mean())
        std = float(self.y.std())
        self.y_std = std if std > 1e-12 else 1.0
        yn = (self.y - self.y_mean) / self.y_std
        K = self._kernel(self.t, self.X, self.t, self.X) + (params.noise + 1e-8) * np.eye(len(self.t))
        self._chol = cho_factor(K, lower=True)
        self._alpha = cho_solve(self._chol, yn)

    def _kernel(self, t1: np.ndarray, X1: np.ndarray, t2: np.ndarray, X2: np.ndarray) -> np.ndarray:
        p = self.params
        d2 = ((X1[:, None, :] - X2[None, :, :]) ** 2).sum(-1)
        dt = np.abs(t1[:, None] - t2[None, :]) / self.time_unit
        return p.variance * np.exp(-0.5 * d2 / p.lengthscale**2) * (1.0 - p.epsilon) ** (dt / 2.0)

    def predict(self, t: float | np.ndarray, X: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Posterior mean and standard deviation of the latent function, in the units of y."""
        X = np.atleast_2d(np.asarray(X, dtype=float))
        ts = np.broadcast_to(np.asarray(t, dtype=float), (len(X),))
        Ks = self._kernel(ts, X, self.t, self.X)
        mean = Ks @ self._alpha
        v = cho_solve(self._chol, Ks.T)
        var = np.maximum(self.params.variance - np.einsum("ij,ji->i", Ks, v), 1e-12)
        return mean * self.y_std + self.y_mean, np.sqrt(var) * self.y_std

    def condition(self, t: float | np.ndarray, X: np.ndarray, y: np.ndarray) -> TimeVaryingGP:
        """The same kernel with more data (used to hallucinate pending points at their mean)."""
        X = np.atleast_2d(np.asarray(X, dtype=float))
        ts = np.broadcast_to(np.asarray(t, dtype=float), (len(X),))
        return TimeVaryingGP(
            np.concatenate([self.t, ts]),
            np.vstack([self.X, X]),
            np.concatenate([self.y, y]),
            self.params,
            self.time_unit,
        )


def _neg_log_likelihood(
    p: np.ndarray, d2: np.ndarray, dt: np.ndarray, y: np.ndarray
) -> tuple[float, np.ndarray]:
    log_l, log_s2, log_n, eps = p
    ell2, s2, noise = math.exp(2 * log_l), math.exp(log_s2), math.exp(log_n)
    decay = (1.0 - eps) ** (dt / 2.0)
    Kf = s2 * np.exp(-0.5 * d2 / ell2) * decay
    K = Kf + (noise + 1e-8) * np.eye(len(y))
    try:
        chol = cho_factor(K, lower=True)
    except np.linalg.LinAlgError:
        return 1e10, np.zeros(4)
    alpha = cho_solve(chol, y)
    nll = 0.5 * y @ alpha + np.log(np.diag(chol[0])).sum() + 0.5 * len(y) * math.log(2 * math.pi)
    W = np.outer(alpha, alpha) - cho_solve(chol, np.eye(len(y)))
    # d nll / d theta = -1/2 tr(W dK/dtheta), with W = alpha alpha^T - K^-1.
    grads = [
        (W * (Kf * d2 / ell2)).sum(),
        (W * Kf).sum(),
        np.trace(W) * noise,
        (W * (-Kf * dt / (2.0 * (1.0 - eps)))).sum(),
    ]
    return float(nll), -0.5 * np.asarray(grads)


@_one_blas_thread
def fit_gp(
    t: Sequence[float] | np.ndarray,
    X: np.ndarray,
    y: Sequence[float] | np.ndarray,
    rng: np.random.Generator,
    *,
    restarts: int = 2,
    time_unit: float | None = None,
) -> TimeVaryingGP:
    """Fit lengthscale, variance, noise and epsilon by maximising the marginal likelihood (L-BFGS-B).

    `X` should be normalised to [0, 1] per column. `time_unit` (default: the smallest gap between
    distinct times, i.e. one interval) sets what "one step apart" means for the time kernel.
    """
    t_arr = np.asarray(t, dtype=float).reshape(-1)
    X_arr = np.asarray(X, dtype=float).reshape(len(t_arr), -1)
    y_arr = np.asarray(y, dtype=float).reshape(-1)
    if len(t_arr) == 0:
        raise ValueError("fit_gp needs at least one observation")
    if time_unit is None:
        gaps = np.diff(np.unique(t_arr))
        time_unit = float(gaps.min()) if len(gaps) else 1.0
    std = float(y_arr.std())
    yn = (y_arr - y_arr.mean()) / (std if std > 1e-12 else 1.0)
    d2 = ((X_arr[:, None, :] - X_arr[None, :, :]) ** 2).sum(-1)
    dt = np.abs(t_arr[:, None] - t_arr[None, :]) / time_unit
    default = KernelParams()
    starts = [
        np.array(
            [
                math.log(default.lengthscale),
                math.log(default.variance),
                math.log(default.noise),
                default.epsilon,
            ]
        )
    ]
    starts += [np.array([rng.uniform(lo, hi) for lo, hi in _BOUNDS]) for _ in range(restarts)]
    best_value, best_p = math.inf, starts[0]
    for start in starts:
        result = minimize(
            _neg_log_likelihood,
            start,
            args=(d2, dt, yn),
            jac=True,
            method="L-BFGS-B",
            bounds=_BOUNDS,
            options={"maxiter": 60},
        )
        if np.isfinite(result.fun) and result.fun < best_value:
            best_value, best_p = float(result.fun), result.x
    params = KernelParams(math.exp(best_p[0]), math.exp(best_p[1]), math.exp(best_p[2]), float(best_p[3]))
    return TimeVaryingGP(t_arr, X_arr, y_arr, params, time_unit)


def ucb_beta(n: int, d: int, delta: float = 0.1) -> float:
    """GP-UCB's beta_t (Srinivas et al., 2010), divided by 5 as in their experiments (the bound is loose)."""
    n = max(n, 1)
    return max(2.0 * math.log(n ** (d / 2.0 + 2.0) * math.pi**2 / (3.0 * delta)) / 5.0, 0.0)


@_one_blas_thread
def pb2_explore(
    history: Sequence[Observation],
    time: float,
    bounds: Sequence[Param],
    rng: np.random.Generator,
    *,
    pending: Sequence[Mapping[str, Any]] = (),
    kappa: float | None = None,
    n_candidates: int = 256,
    restarts: int = 2,
    max_points: int = 200,
    time_unit: float | None = None,
) -> dict[str, Any]:
    """New values for the float/int parameters in `bounds`, maximising GP-UCB at `time`.

    The GP is fitted to (time, normalised values) -> change over the newest `max_points`
    observations; `pending` configurations (chosen earlier in this round) are added at their
    posterior mean, which shrinks the uncertainty around them and spreads a batch out. UCB is
    mean + kappa * std, with kappa = sqrt(ucb_beta(...)) unless given. `time_unit` is one ready
    interval in the units of `time` (default: the smallest gap between observed times, right for
    synchronous generations; pass the interval for asynchronous data). With fewer than two usable
    observations the values are sampled from the space.
    """
    params = list(bounds)
    for p in params:
        if p.kind == "choice":
            raise ValueError(
                f"pb2_explore handles float and int parameters; '{p.name}' is a choice (use pb2_mixed_explore)"
            )
    if not params:
        return {}
    usable = [o for o in history if math.isfinite(float(o.change))]
    usable = sorted(usable, key=lambda o: float(o.time))[-max_points:]
    if len(usable) < 2:
        return {p.name: p.sample(rng) for p in params}
    t = np.array([float(o.time) for o in usable])
    X = np.array([[p.to_unit(float(o.config[p.name])) for p in params] for o in usable])
    y = np.array([float(o.change) for o in usable])
    gp = fit_gp(t, X, y, rng, restarts=restarts, time_unit=time_unit)
    if pending:
        Xp = np.array([[p.to_unit(float(c[p.name])) for p in params] for c in pending])
        gp = gp.condition(time, Xp, gp.predict(time, Xp)[0])
    k = math.sqrt(ucb_beta(len(gp.t), len(params))) if kappa is None else float(kappa)

    def neg_ucb(u: np.ndarray) -> float:
        mean, std = gp.predict(time, u.reshape(1, -1))
        return -float(mean[0] + k * std[0])

    candidates = rng.random((n_candidates, len(params)))
    mean, std = gp.predict(time, candidates)
    scores = mean + k * std
    best_u, best_value = candidates[int(np.argmax(scores))], float(scores.max())
    for start in candidates[np.argsort(scores)[-3:]]:  # polish the three best candidates
        result = minimize(
            neg_ucb, start, method="L-BFGS-B", bounds=[(0.0, 1.0)] * len(params), options={"maxiter": 30}
        )
        if -result.fun > best_value:
            best_u, best_value = result.x, float(-result.fun)
    return {p.name: p.from_unit(float(u)) for p, u in zip(params, best_u, strict=True)}


def bandit_probabilities(
    pulls: Sequence[tuple[float, int, float]],
    n_arms: int,
    *,
    gamma: float = 0.2,
    eta: float = 1.0,
    forget: float = 0.1,
    time_unit: float | None = None,
) -> np.ndarray:
    """Time-varying EXP3: arm probabilities after replaying `pulls` = (time, arm, reward) round by round.

    A round is one `time_unit` (default: the smallest gap between distinct times, i.e. one
    synchronous generation; pass the ready interval for asynchronous data). Rewards are rescaled to
    [0, 1] over the history. Each round adds eta * (importance-weighted reward) to the log-weight
    of every arm pulled in it, weighting by the round's empirical propensity n_arm / n_round rather
    than by the bandit's own probabilities: in PBT the arms were also chosen by exploits and by the
    initial random population, and the empirical share is what actually happened. Between rounds
    every log-weight shrinks by (1 - forget) per round, so old evidence fades as the population's
    needs change. The probabilities mix the weights with `gamma` of uniform exploration.
    """
    if n_arms < 1:
        raise ValueError(f"a bandit needs at least one arm, got {n_arms}")
    if not pulls:
        return np.full(n_arms, 1.0 / n_arms)
    times = np.array([float(p[0]) for p in pulls])
    arms = np.array([int(p[1]) for p in pulls])
    rewards = np.array([float(p[2]) for p in pulls])
    spread = float(rewards.max() - rewards.min())
    scaled = (rewards - rewards.min()) / spread if spread > 1e-12 else np.full(len(rewards), 0.5)
    if time_unit is None:
        gaps = np.diff(np.unique(times))
        time_unit = float(gaps.min()) if len(gaps) else 1.0
    rounds = np.floor((times - times.min()) / time_unit + 1e-9)
    log_w = np.zeros(n_arms)
    previous = 0.0
    for r in np.unique(rounds):
        log_w *= (1.0 - forget) ** (r - previous)
        previous = r
        in_round = rounds == r
        for arm in np.unique(arms[in_round]):
            # sum(reward) / (n_round * n_arm / n_round): the arm's mean reward in this round.
            log_w[arm] += eta * float(scaled[in_round & (arms == arm)].mean())
    return _mix(log_w, gamma)


def _mix(log_w: np.ndarray, gamma: float) -> np.ndarray:
    w = np.exp(log_w - log_w.max())
    return (1.0 - gamma) * w / w.sum() + gamma / len(w)


def pb2_mixed_explore(
    config: Mapping[str, Any],
    space: Sequence[Param],
    history: Sequence[Observation],
    time: float,
    rng: np.random.Generator,
    *,
    pending: Sequence[Mapping[str, Any]] = (),
    kappa: float | None = None,
    gamma: float = 0.2,
    forget: float = 0.1,
    time_unit: float | None = None,
    min_points: int = 3,
) -> tuple[dict[str, Any], list[str]]:
    """PB2 with categorical parameters: (new config, change log) for one exploited member.

    Each mutable choice is drawn from its own time-varying EXP3 bandit over the history's changes;
    then the mutable float/int values come from `pb2_explore` fitted only on observations whose
    choices equal the new ones (if fewer than `min_points` match: those whose mutable choices match,
    else all observations). Immutable parameters keep their value in `config`. `time_unit` is
    passed to both the bandit and the GP. Log lines read `name: old -> new (bandit)` / `(pb2)`.
    """
    new = dict(config)
    log: list[str] = []
    choices = [p for p in space if p.kind == "choice"]
    for p in choices:
        if not p.mutable:
            continue
        pulls = [
            (float(o.time), p.choices.index(o.config[p.name]), float(o.change))
            for o in history
            if _valid(o) and o.config.get(p.name) in p.choices
        ]
        probabilities = bandit_probabilities(
            pulls, len(p.choices), gamma=gamma, forget=forget, time_unit=time_unit
        )
        new[p.name] = p.choices[int(rng.choice(len(p.choices), p=probabilities))]
    continuous = [p for p in space if p.kind != "choice" and p.mutable]

    # Condition on every choice (the member's fixed ones too) where there is enough data, else on
    # the bandit's picks only, else on nothing: a GP on few points would only add noise.
    data: list[Observation] = list(history)
    same = _same_choices([], new)
    for keys in (choices, [p for p in choices if p.mutable]):
        matching = [o for o in history if _same_choices(keys, new)(o.config)]
        if len(matching) >= min_points:
            data, same = matching, _same_choices(keys, new)
            break
    pending = [c for c in pending if same(c)]
    values = pb2_explore(data, time, continuous, rng, pending=pending, kappa=kappa, time_unit=time_unit)
    new.update(values)
    for p in space:
        if p.mutable and p.name in config and new[p.name] != config[p.name]:
            log.append(
                describe_change(
                    p.name, config[p.name], new[p.name], "bandit" if p.kind == "choice" else "pb2"
                )
            )
    return new, log


def _same_choices(keys: Sequence[Param], values: Mapping[str, Any]) -> Callable[[Mapping[str, Any]], bool]:
    return lambda config: all(config.get(p.name) == values.get(p.name) for p in keys)


def _valid(o: Observation) -> bool:
    return math.isfinite(float(o.change))
