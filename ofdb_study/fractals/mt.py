"""MT19937 in numba, bit-compatible with NumPy's legacy ``RandomState``.

The category search must follow NumPy's global Mersenne Twister word for word (the public search
script ``param_search/ifs_search.py`` seeds it once with 1 and draws every number from it),
and it must be fast and splittable: the producer walks the stream and hands each candidate's
state to a worker, which regenerates that candidate's 100,000 uniforms itself. A state is a
uint32 array of 625 entries: the 624 key words and the read position.
"""

from __future__ import annotations

import functools

import numba as nb
import numpy as np

from .defaults import CHAOS_SEED

N = 624
M = 397
STATE_LEN = N + 1  # key words + position
_MATRIX_A = np.uint32(0x9908B0DF)
_UPPER = np.uint32(0x80000000)
_LOWER = np.uint32(0x7FFFFFFF)


def legacy_state(seed: int) -> np.ndarray:
    """The state of ``np.random.RandomState(seed)`` before its first draw, shape (625,) uint32."""
    _, key, pos, _, _ = np.random.RandomState(seed).get_state(legacy=True)
    state = np.empty(STATE_LEN, dtype=np.uint32)
    state[:N] = key
    state[N] = pos
    return state


def chaos_uniforms(n_points: int, seed: int = CHAOS_SEED) -> np.ndarray:
    """``np.random.RandomState(seed).random_sample(n_points)``, shape (n_points,), read-only.

    The renderers (2D and 3D) reset the map-choice stream to the same seed for every image, so
    these uniforms are shared by every category; the last 8 (points, seed) pairs stay cached.
    """
    return _chaos_uniforms(int(n_points), int(seed))


@functools.lru_cache(maxsize=8)
def _chaos_uniforms(n_points: int, seed: int) -> np.ndarray:
    u = np.random.RandomState(seed).random_sample(n_points)
    u.flags.writeable = False
    return u


def to_numpy(state: np.ndarray) -> np.random.RandomState:
    """A ``RandomState`` positioned where ``state`` is (for checks and for Python-side draws)."""
    rs = np.random.RandomState()
    rs.set_state(("MT19937", state[:N].copy(), int(state[N]), 0, 0.0))
    return rs


@nb.njit(cache=True, nogil=True)
def _mix(upper_word, lower_word, far_word):
    y = (upper_word & _UPPER) | (lower_word & _LOWER)
    v = far_word ^ (y >> np.uint32(1))
    if y & np.uint32(1):
        v ^= _MATRIX_A
    return v


@nb.njit(cache=True, nogil=True)
def twist(state):
    """Regenerate the 624 key words in place and reset the position to 0.

    Three loops instead of one with modulo indexing: the split points are where ``i + 1`` and
    ``i + M`` wrap, which lets LLVM keep the body branch-light.
    """
    for i in range(N - M):
        state[i] = _mix(state[i], state[i + 1], state[i + M])
    for i in range(N - M, N - 1):
        state[i] = _mix(state[i], state[i + 1], state[i + M - N])
    state[N - 1] = _mix(state[N - 1], state[0], state[M - 1])
    state[N] = 0


@nb.njit(cache=True, nogil=True)
def next_u32(state):
    """The next tempered 32-bit word."""
    pos = state[N]
    if pos >= N:
        twist(state)
        pos = 0
    y = state[pos]
    state[N] = pos + 1
    y ^= y >> np.uint32(11)
    y ^= (y << np.uint32(7)) & np.uint32(0x9D2C5680)
    y ^= (y << np.uint32(15)) & np.uint32(0xEFC60000)
    y ^= y >> np.uint32(18)
    return y


@nb.njit(cache=True, nogil=True)
def next_double(state):
    """A uniform in [0, 1) from two words, exactly as ``RandomState.random_sample``."""
    first = next_u32(state)
    return _to_double(first, next_u32(state))


@nb.njit(cache=True, nogil=True)
def _to_double(first, second):
    return ((first >> np.uint32(5)) * 67108864.0 + (second >> np.uint32(6))) / 9007199254740992.0


@nb.njit(cache=True, nogil=True)
def fill_doubles(state, out, n):
    """Fill ``out[:n]`` with the next ``n`` uniforms, as ``random_sample(n)`` would.

    Words are tempered one key block at a time into a small buffer that stays in L1 cache; a
    word pair that straddles two blocks is carried over.
    """
    words = np.empty(N, dtype=np.uint32)
    i = 0
    carry = False
    half = np.uint32(0)
    while i < n:
        pos = state[N]
        if pos >= N:
            twist(state)
            pos = 0
        step = min(N - pos, 2 * (n - i) - (1 if carry else 0))
        for k in range(step):
            y = state[pos + k]
            y ^= y >> np.uint32(11)
            y ^= (y << np.uint32(7)) & np.uint32(0x9D2C5680)
            y ^= (y << np.uint32(15)) & np.uint32(0xEFC60000)
            y ^= y >> np.uint32(18)
            words[k] = y
        state[N] = pos + step
        j = 0
        if carry:
            out[i] = _to_double(half, words[0])
            i += 1
            j = 1
            carry = False
        while j + 1 < step:
            out[i] = _to_double(words[j], words[j + 1])
            i += 1
            j += 2
        if j < step:
            half = words[j]
            carry = True


@nb.njit(cache=True, nogil=True)
def skip(state, n_words):
    """Advance the stream by ``n_words`` words without tempering the skipped ones."""
    remaining = n_words
    while remaining > 0:
        pos = state[N]
        if pos >= N:
            twist(state)
            pos = 0
        step = min(remaining, N - pos)
        state[N] = pos + step
        remaining -= step


@nb.njit(cache=True, nogil=True)
def randint_masked(state, low, high):
    """``RandomState.randint(low, high)`` for a small range: masked rejection on 32-bit words."""
    rng = np.uint32(high - low - 1)
    mask = rng
    mask |= mask >> np.uint32(1)
    mask |= mask >> np.uint32(2)
    mask |= mask >> np.uint32(4)
    mask |= mask >> np.uint32(8)
    mask |= mask >> np.uint32(16)
    while True:
        v = next_u32(state) & mask
        if v <= rng:
            return low + np.int64(v)
