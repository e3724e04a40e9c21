"""The compiled step of the trading env, over a batch of N sessions at once.

The single env is the N = 1 case of this kernel and the vector env the N > 1 case, so the two
cannot disagree. Timing of one step for an env that has observed bar ``k`` of its session:

1. The action sets new targets. A ticker whose target changed is sized in whole shares (or
   the market's fractional steps, ``market.quantity_decimals``) at the decision price
   ``close[k]`` and its order (target shares minus held and pending shares) is
   queued to fill at the open of bar ``k + latency``. Orders that would fill after the last bar
   are not sent. A ticker whose target did not change is not traded: holding never re-sizes
   to follow the price (that would pay a minimum commission for one-share adjustments).
2. Time moves to bar ``k + 1``: orders due at that bar fill at its open with costs (spread and
   impact use the decision bar's volatility and volume, known when the order was sent).
3. The portfolio is marked at ``close[k + 1]``. If the intraday drawdown from the session's
   peak equity exceeds the cap, the episode terminates and (with ``flatten_at_close``)
   every position is closed at that close, with costs.
4. After the last bar has been marked there is one closing step: the action is not used and
   (with ``flatten_at_close``) positions are closed at the last bar's close, with costs, since
   no later open exists in the session. The episode then terminates: the session is over and
   nothing the agent does later can earn or lose it anything, so there is no value to
   bootstrap (Gymnasium's ``terminated``, not ``truncated``, which would tell PPO to add the
   value of a state that does not exist). A session of L bars is therefore an episode of L
   steps (390, or 210 on half days) unless the drawdown cap terminates it earlier; the step
   count tells the two ends apart (a drawdown stop comes before step L).

The env never reports ``truncated``: no time limit outside the task cuts an episode short. The
field stays in the step result for wrappers that add one.

The reward is computed by the registered reward function on the step-result vector.
"""

from __future__ import annotations

import numpy as np

from stairways.market.actions import apply_action, target_quantity
from stairways.market.costs import fill_one
from stairways.market.jit import core_jit
from stairways.market.portfolio import (
    PF_CASH,
    PF_DRAWDOWN,
    PF_EQUITY,
    PF_FEES,
    PF_FILLS,
    PF_IMPACT,
    PF_MAX_DRAWDOWN,
    PF_NOTIONAL,
    PF_PEAK,
    PF_REALISED,
    PF_SPREAD,
    PF_START,
    PF_UNREALISED,
    pf_fill,
    pf_mark,
    pf_reset,
)
from stairways.market.step_state import (
    N_SCALAR,
    N_TICKER,
    S_ACTION_CHANGED,
    S_BAR,
    S_CAPITAL,
    S_CASH,
    S_COMMISSION,
    S_COSTS,
    S_DRAWDOWN,
    S_EQUITY,
    S_EQUITY_PREV,
    S_FEES,
    S_HOLDS,
    S_IMPACT,
    S_LENGTH,
    S_MAX_DRAWDOWN,
    S_NOTIONAL,
    S_PEAK,
    S_REALISED,
    S_SESSION,
    S_SPREAD,
    S_STEP,
    S_STEP_TRADES,
    S_TERMINATED,
    S_TRADES,
    S_TRUNCATED,
    S_UNREALISED,
    T_FILL_PRICE,
    T_FILL_QTY,
    T_FRACTION,
    T_PRICE,
    T_RETURN,
    T_SHARES,
    T_TARGET,
)
from stairways.rewards.registry import (
    reward_end_episode,
    reward_start_episode,
    reward_step,
)

# Market array (S, L, T, 4) columns.
M_OPEN, M_CLOSE, M_SIGMA, M_VOLUME = 0, 1, 2, 3
M_WIDTH = 4

# Integer state (N, I_WIDTH) columns.
I_SESSION, I_BAR, I_STEPS, I_QPOS, I_HOLDS, I_ACTIVE, I_DONE = 0, 1, 2, 3, 4, 5, 6
I_WIDTH = 7

# Env parameter vector.
(
    EP_CAPITAL,
    EP_MAX_NOTIONAL,
    EP_LATENCY,
    EP_FLATTEN,
    EP_DD_CAP,
    EP_ACTION_SET,
    EP_REWARD_ID,
    EP_AUTO_RESET,
    EP_OBS_CASH,
    EP_OBS_UPNL,
    EP_OBS_DD,
    EP_OBS_TTC,
    EP_QTY_SCALE,  # steps per share: 1 whole shares, 10**d fractions (market.quantity_decimals)
) = range(13)
EP_WIDTH = 13

CASH_FRACTION_BOUND = 10.0


@core_jit(inline=True)
def write_obs(
    obs: np.ndarray,
    feats: np.ndarray,
    mkt: np.ndarray,
    s: int,
    bar: int,
    n: int,
    shares: np.ndarray,
    pf: np.ndarray,
    ep: np.ndarray,
) -> None:
    """Observation of bar ``bar``: features (ticker-major), position fractions, extras."""
    n_t = feats.shape[2]
    n_f = feats.shape[3]
    o = 0
    for j in range(n_t):
        for f in range(n_f):
            obs[o] = feats[s, bar, j, f]
            o += 1
    notional = ep[EP_MAX_NOTIONAL]
    for j in range(n_t):
        frac = shares[j] * mkt[s, bar, j, M_CLOSE] / notional
        obs[o] = min(1.0, max(-1.0, frac))
        o += 1
    if ep[EP_OBS_CASH] > 0.0:
        eq = pf[PF_EQUITY]
        v = pf[PF_CASH] / eq if eq > 0.0 else CASH_FRACTION_BOUND
        obs[o] = min(CASH_FRACTION_BOUND, max(-CASH_FRACTION_BOUND, v))
        o += 1
    if ep[EP_OBS_UPNL] > 0.0:
        obs[o] = min(1.0, max(-1.0, pf[PF_UNREALISED] / pf[PF_START]))
        o += 1
    if ep[EP_OBS_DD] > 0.0:
        obs[o] = min(1.0, max(0.0, pf[PF_DRAWDOWN]))
        o += 1
    if ep[EP_OBS_TTC] > 0.0:
        obs[o] = (n - 1 - bar) / (n - 1)
        o += 1


@core_jit(refcount=False)
def start_episode(
    i: int,
    s: int,
    mkt: np.ndarray,
    feats: np.ndarray,
    lengths: np.ndarray,
    si: np.ndarray,
    pf: np.ndarray,
    shares: np.ndarray,
    avg: np.ndarray,
    targets: np.ndarray,
    pend: np.ndarray,
    rs: np.ndarray,
    ep: np.ndarray,
    rp: np.ndarray,
    obs: np.ndarray,
) -> None:
    """Put env ``i`` at the open of session ``s``: flat, starting capital, bar 0 observed."""
    si[i, I_SESSION] = s
    si[i, I_BAR] = 0
    si[i, I_STEPS] = 0
    si[i, I_HOLDS] = 0
    si[i, I_ACTIVE] = 1
    si[i, I_DONE] = 0
    pf_reset(pf[i], shares[i], avg[i], ep[EP_CAPITAL])
    targets[i, :] = 0.0
    pend[i, :, :] = 0.0
    pf_mark(pf[i], shares[i], avg[i], mkt[s, 0, :, M_CLOSE])
    reward_start_episode(int(ep[EP_REWARD_ID]), rs[i], rp)
    write_obs(obs[i], feats, mkt, s, 0, lengths[s], shares[i], pf[i], ep)


@core_jit(inline=True)
def _fill(
    pf_row: np.ndarray,
    shares: np.ndarray,
    avg: np.ndarray,
    x: np.ndarray,
    scratch: np.ndarray,
    j: int,
    qty: float,
    ref: float,
    sigma: float,
    volume: float,
    cp: np.ndarray,
) -> None:
    price, commission, spread, impact = fill_one(qty, ref, sigma, volume, cp)
    pf_fill(pf_row, shares, avg, j, qty, price, commission, spread, impact)
    x[N_SCALAR + N_TICKER * j + T_FILL_QTY] += qty
    scratch[j, 0] += abs(qty)
    scratch[j, 1] += abs(qty) * price


@core_jit(inline=True)
def _flatten(
    s: int,
    bar: int,
    mkt: np.ndarray,
    pf_row: np.ndarray,
    shares: np.ndarray,
    avg: np.ndarray,
    x: np.ndarray,
    scratch: np.ndarray,
    cp: np.ndarray,
) -> None:
    for j in range(shares.shape[0]):
        q = -shares[j]
        if q != 0.0:
            _fill(
                pf_row,
                shares,
                avg,
                x,
                scratch,
                j,
                q,
                mkt[s, bar, j, M_CLOSE],
                mkt[s, bar, j, M_SIGMA],
                mkt[s, bar, j, M_VOLUME],
                cp,
            )
    pf_mark(pf_row, shares, avg, mkt[s, bar, :, M_CLOSE])


@core_jit(refcount=False)
def step_batch(
    actions: np.ndarray,
    mkt: np.ndarray,
    feats: np.ndarray,
    lengths: np.ndarray,
    queue: np.ndarray,
    si: np.ndarray,
    pf: np.ndarray,
    shares: np.ndarray,
    avg: np.ndarray,
    targets: np.ndarray,
    pend: np.ndarray,
    rs: np.ndarray,
    ep: np.ndarray,
    cp: np.ndarray,
    rp: np.ndarray,
    obs: np.ndarray,
    rew: np.ndarray,
    term: np.ndarray,
    trunc: np.ndarray,
    out: np.ndarray,
    comps: np.ndarray,
    term_obs: np.ndarray,
    scratch: np.ndarray,
    n_actions: int,
) -> int:
    """Advance every active env one step (see the module docstring for the timing).

    Returns -1, or the index of the first env whose action is outside [0, n_actions) (then
    nothing has changed).
    """
    n_env = si.shape[0]
    for i in range(n_env):
        if actions[i] < 0 or actions[i] >= n_actions:
            return i
    n_t = shares.shape[1]
    lat = int(ep[EP_LATENCY])
    set_id = int(ep[EP_ACTION_SET])
    rid = int(ep[EP_REWARD_ID])
    notional = ep[EP_MAX_NOTIONAL]
    flatten = ep[EP_FLATTEN] > 0.0
    auto_reset = ep[EP_AUTO_RESET] > 0.0
    for i in range(n_env):
        term[i] = False
        trunc[i] = False
        rew[i] = 0.0
        if si[i, I_ACTIVE] == 0:
            continue
        s = si[i, I_SESSION]
        k = si[i, I_BAR]
        n = lengths[s]
        x = out[i]
        p = pf[i]
        eq_prev = p[PF_EQUITY]
        fees0 = p[PF_FEES]
        spread0 = p[PF_SPREAD]
        impact0 = p[PF_IMPACT]
        notional0 = p[PF_NOTIONAL]
        fills0 = p[PF_FILLS]
        for j in range(n_t):
            x[N_SCALAR + N_TICKER * j + T_FILL_QTY] = 0.0
            scratch[j, 0] = 0.0
            scratch[j, 1] = 0.0
        changed = False
        terminated = False
        truncated = False
        if k < n - 1:
            for j in range(n_t):
                scratch[j, 2] = targets[i, j]
            changed = apply_action(set_id, actions[i], targets[i], targets[i])
            if changed and k + lat <= n - 1:
                slot = k % lat
                for j in range(n_t):
                    if targets[i, j] == scratch[j, 2]:
                        continue
                    want = target_quantity(
                        targets[i, j], notional, mkt[s, k, j, M_CLOSE], ep[EP_QTY_SCALE]
                    )
                    pending = 0.0
                    for z in range(lat):
                        pending += pend[i, z, j]
                    # On the 8-decimal grid, as the governor's and the broker's quantities
                    # are (fractional steps summed in floats carry noise; whole shares
                    # are exact and stay as they are).
                    pend[i, slot, j] = round(want - shares[i, j] - pending, 8)
            bar = k + 1
            slot1 = bar % lat
            decided = bar - lat
            for j in range(n_t):
                q = pend[i, slot1, j]
                if q != 0.0:
                    pend[i, slot1, j] = 0.0
                    _fill(
                        p,
                        shares[i],
                        avg[i],
                        x,
                        scratch,
                        j,
                        q,
                        mkt[s, bar, j, M_OPEN],
                        mkt[s, decided, j, M_SIGMA],
                        mkt[s, decided, j, M_VOLUME],
                        cp,
                    )
            pf_mark(p, shares[i], avg[i], mkt[s, bar, :, M_CLOSE])
            if p[PF_DRAWDOWN] > ep[EP_DD_CAP]:
                terminated = True
                pend[i, :, :] = 0.0
                if flatten:
                    targets[i, :] = 0.0
                    _flatten(s, bar, mkt, p, shares[i], avg[i], x, scratch, cp)
        else:
            bar = k
            terminated = True  # the session is over (see step 4 of the module docstring)
            if flatten:
                targets[i, :] = 0.0
                _flatten(s, bar, mkt, p, shares[i], avg[i], x, scratch, cp)
        si[i, I_BAR] = bar
        si[i, I_STEPS] += 1
        if not changed:
            si[i, I_HOLDS] += 1

        x[S_STEP] = si[i, I_STEPS]
        x[S_LENGTH] = n
        x[S_SESSION] = s
        x[S_BAR] = bar
        x[S_CAPITAL] = p[PF_START]
        x[S_EQUITY_PREV] = eq_prev
        x[S_EQUITY] = p[PF_EQUITY]
        x[S_CASH] = p[PF_CASH]
        x[S_PEAK] = p[PF_PEAK]
        x[S_DRAWDOWN] = p[PF_DRAWDOWN]
        x[S_MAX_DRAWDOWN] = p[PF_MAX_DRAWDOWN]
        x[S_UNREALISED] = p[PF_UNREALISED]
        x[S_REALISED] = p[PF_REALISED]
        x[S_FEES] = p[PF_FEES]
        x[S_COSTS] = p[PF_FEES] + p[PF_SPREAD] + p[PF_IMPACT]
        x[S_COMMISSION] = p[PF_FEES] - fees0
        x[S_SPREAD] = p[PF_SPREAD] - spread0
        x[S_IMPACT] = p[PF_IMPACT] - impact0
        x[S_NOTIONAL] = p[PF_NOTIONAL] - notional0
        x[S_STEP_TRADES] = p[PF_FILLS] - fills0
        x[S_TRADES] = p[PF_FILLS]
        x[S_HOLDS] = si[i, I_HOLDS]
        x[S_ACTION_CHANGED] = 1.0 if changed else 0.0
        x[S_TERMINATED] = 1.0 if terminated else 0.0
        x[S_TRUNCATED] = 1.0 if truncated else 0.0
        for j in range(n_t):
            base = N_SCALAR + N_TICKER * j
            close = mkt[s, bar, j, M_CLOSE]
            x[base + T_SHARES] = shares[i, j]
            x[base + T_FRACTION] = min(1.0, max(-1.0, shares[i, j] * close / notional))
            x[base + T_TARGET] = targets[i, j]
            x[base + T_PRICE] = close
            x[base + T_RETURN] = close / mkt[s, k, j, M_CLOSE] - 1.0
            if scratch[j, 0] > 0.0:
                x[base + T_FILL_PRICE] = scratch[j, 1] / scratch[j, 0]
            else:
                x[base + T_FILL_PRICE] = np.nan

        rew[i] = reward_step(rid, x, rs[i], rp, comps[i])
        write_obs(obs[i], feats, mkt, s, bar, n, shares[i], p, ep)
        term[i] = terminated
        trunc[i] = truncated
        if terminated or truncated:
            si[i, I_DONE] = 1
            reward_end_episode(rid, rs[i], rp)
            if auto_reset:
                for c in range(obs.shape[1]):  # a loop: a slice copy allocates
                    term_obs[i, c] = obs[i, c]
                qpos = si[i, I_QPOS]
                nxt = queue[i, qpos]
                si[i, I_QPOS] = qpos + 1
                if nxt < 0:
                    si[i, I_ACTIVE] = 0
                    obs[i, :] = 0.0
                else:
                    start_episode(
                        i,
                        nxt,
                        mkt,
                        feats,
                        lengths,
                        si,
                        pf,
                        shares,
                        avg,
                        targets,
                        pend,
                        rs,
                        ep,
                        rp,
                        obs,
                    )
    return -1


@core_jit(refcount=False)
def start_many(
    envs: np.ndarray,
    sessions: np.ndarray,
    mkt: np.ndarray,
    feats: np.ndarray,
    lengths: np.ndarray,
    si: np.ndarray,
    pf: np.ndarray,
    shares: np.ndarray,
    avg: np.ndarray,
    targets: np.ndarray,
    pend: np.ndarray,
    rs: np.ndarray,
    ep: np.ndarray,
    rp: np.ndarray,
    obs: np.ndarray,
) -> None:
    """Start session ``sessions[k]`` on env ``envs[k]`` (a negative session idles the env)."""
    for k in range(envs.shape[0]):
        i = envs[k]
        if sessions[k] < 0:
            si[i, I_ACTIVE] = 0
            si[i, I_DONE] = 1
            obs[i, :] = 0.0
            continue
        start_episode(
            i, sessions[k], mkt, feats, lengths, si, pf, shares, avg, targets, pend, rs, ep, rp, obs
        )


# Flags in the return value of :func:`step_vec` (returned as ``-1 - flags``).
VEC_ANY_DONE = 1  # some env ended its episode (its terminal observation is in ``term_obs``)
VEC_EXHAUSTED = 2  # some env has started the last session of its queue (refill it)

# Rows of the ``flags`` output of :func:`step_vec`.
F_ACTIVE, F_DONE, F_TRUNCATED = 0, 1, 2


@core_jit(refcount=False)
def step_vec(
    actions: np.ndarray,
    mkt: np.ndarray,
    feats: np.ndarray,
    lengths: np.ndarray,
    queue: np.ndarray,
    si: np.ndarray,
    pf: np.ndarray,
    shares: np.ndarray,
    avg: np.ndarray,
    targets: np.ndarray,
    pend: np.ndarray,
    rs: np.ndarray,
    ep: np.ndarray,
    cp: np.ndarray,
    rp: np.ndarray,
    obs: np.ndarray,
    rew: np.ndarray,
    term: np.ndarray,
    trunc: np.ndarray,
    term_obs: np.ndarray,
    scratch: np.ndarray,
    n_actions: int,
    flags: np.ndarray,
    rew_out: np.ndarray,
    obs_out: np.ndarray,
    out_out: np.ndarray,
    comps_out: np.ndarray,
) -> int:
    """:func:`step_batch` plus the vector env's bookkeeping, in one call, into fresh arrays.

    ``flags`` (3, N) gets which envs were playing before the step (row ``F_ACTIVE``), which
    ended their episode (``F_DONE``: terminated or truncated) and which were truncated
    (``F_TRUNCATED``); ``rew_out`` the reward as float32 and ``obs_out`` a copy of the
    observations. The step results and reward components are written straight into
    ``out_out`` and ``comps_out`` (zero rows for envs that were idle), not into the core's own
    ``out`` and ``comps`` arrays, which keep those of the last :func:`step_batch`. All five are
    the caller's arrays to keep.

    Returns the index of the first out-of-range action (then nothing has changed, as in
    :func:`step_batch`), or ``-1 - flags`` with ``VEC_ANY_DONE`` when any env ended its
    episode and ``VEC_EXHAUSTED`` when any env's session queue is used up.
    """
    n_env = si.shape[0]
    for i in range(n_env):
        flags[F_ACTIVE, i] = si[i, I_ACTIVE] == 1
    bad = step_batch(
        actions,
        mkt,
        feats,
        lengths,
        queue,
        si,
        pf,
        shares,
        avg,
        targets,
        pend,
        rs,
        ep,
        cp,
        rp,
        obs,
        rew,
        term,
        trunc,
        out_out,
        comps_out,
        term_obs,
        scratch,
        n_actions,
    )
    if bad >= 0:
        return bad
    width = queue.shape[1]
    code = 0
    for i in range(n_env):
        if not flags[F_ACTIVE, i]:
            out_out[i, :] = 0.0
            comps_out[i, :] = 0.0
        d = term[i] or trunc[i]
        flags[F_DONE, i] = d
        flags[F_TRUNCATED, i] = trunc[i]
        rew_out[i] = np.float32(rew[i])
        if d:
            code |= VEC_ANY_DONE
            if si[i, I_QPOS] >= width:
                code |= VEC_EXHAUSTED
    for i in range(n_env):
        for c in range(obs.shape[1]):
            obs_out[i, c] = obs[i, c]
    return -1 - code
