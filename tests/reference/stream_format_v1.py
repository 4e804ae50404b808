#!/usr/bin/python3
"""Independent reimplementation of shardinit's stream format v1 (docs/stream-format.md).

Pure Python 3 + NumPy, written from the specification text (section 8 states the elementary
functions, their steps and constants, which src/math/deterministic_math.hpp implements). It does not
use any part of the C++ implementation.

Arithmetic discipline:
  * binary32 ("Real" for f32, bf16, f16) is computed with np.float32 *arrays* and np.float32
    constants only; every operation is one correctly rounded IEEE single operation. Python floats
    never enter a binary32 expression (they would promote it to binary64).
  * binary64 is computed with Python floats (per-tensor constants) or np.float64 arrays (per element).
  * Bit patterns are handled as np.uint64 (Philox) and viewed as np.uint32 / np.uint64 / np.uint16.

Public entry points:
  philox4x32(counter_words, key_words, rounds=10)   vectorized Philox4x32-R
  stream_from_name(name)                             FNV-1a 64
  element_bits(seed, stream, dtype, n)               the bits k (32-bit types) or K (f64) per element
  generate(seed, stream, dtype, distribution, n)     the stored bits (uint16/uint32/uint64) of a tensor
  distribution_from_initializer(fn, params, fan_in, fan_out)
"""

from __future__ import annotations

import math
import struct
from fractions import Fraction

import numpy as np

STREAM_FORMAT = "shardinit-stream-v1"

F32 = np.float32
F64 = np.float64
U32_MASK = 0xFFFFFFFF
U64_MASK = 0xFFFFFFFFFFFFFFFF


# ---------------------------------------------------------------------------------------------
# Exact decimal -> binary32 (C's `1.2345e-1f`: one rounding of the decimal, no double rounding)
# ---------------------------------------------------------------------------------------------

def _f32_from_decimal(text: str) -> np.float32:
    """Round the exact decimal `text` to the nearest binary32, ties to even (as a C float literal)."""
    q = Fraction(text)
    if q == 0:
        return F32(0.0)
    sign = -1 if q < 0 else 1
    q = abs(q)
    # find e with 2^e <= q < 2^(e+1)
    e = q.numerator.bit_length() - q.denominator.bit_length()
    if Fraction(2) ** e > q:
        e -= 1
    elif Fraction(2) ** (e + 1) <= q:
        e += 1
    e = max(e, -126)  # subnormal range keeps the exponent of the smallest normal
    scale = Fraction(2) ** (23 - e)  # units of the last place
    scaled = q * scale
    n = scaled.numerator // scaled.denominator
    rem = scaled - n
    if rem > Fraction(1, 2) or (rem == Fraction(1, 2) and n % 2 == 1):
        n += 1
    value = Fraction(n) / scale
    out = F32(float(value))  # `value` is a binary32 number, exactly representable as a double
    assert Fraction(float(out)) == value, text
    return F32(sign * out)


def c32(text: str) -> np.ndarray:
    """A binary32 constant as a 0-d float32 array (so that it never promotes to binary64)."""
    return np.array(_f32_from_decimal(text), dtype=np.float32)


# ---------------------------------------------------------------------------------------------
# Section 1: Philox4x32-10
# ---------------------------------------------------------------------------------------------

PHILOX_M0 = np.uint64(0xD2511F53)
PHILOX_M1 = np.uint64(0xCD9E8D57)
PHILOX_W0 = 0x9E3779B9
PHILOX_W1 = 0xBB67AE85
_M32 = np.uint64(0xFFFFFFFF)
_S32 = np.uint64(32)


def philox4x32(counter, key, rounds: int = 10):
    """Philox4x32-R of Random123. counter: 4 arrays (or ints) of 32-bit words; key: 2 ints.

    Returns four np.uint64 arrays holding 32-bit words (w0, w1, w2, w3)."""
    c = [np.asarray(w, dtype=np.uint64) & _M32 for w in counter]
    c = np.broadcast_arrays(*c)
    c0, c1, c2, c3 = (x.copy() for x in c)
    k0 = int(key[0]) & U32_MASK
    k1 = int(key[1]) & U32_MASK
    for r in range(rounds):
        if r > 0:
            k0 = (k0 + PHILOX_W0) & U32_MASK
            k1 = (k1 + PHILOX_W1) & U32_MASK
        p0 = PHILOX_M0 * c0  # < 2^64, exact in uint64
        p1 = PHILOX_M1 * c2
        hi0, lo0 = p0 >> _S32, p0 & _M32
        hi1, lo1 = p1 >> _S32, p1 & _M32
        c0, c1, c2, c3 = (hi1 ^ c1 ^ np.uint64(k0), lo1, hi0 ^ c3 ^ np.uint64(k1), lo0)
    return c0, c1, c2, c3


def check_philox_kat(path: str) -> int:
    """Check the philox4x32 lines of a Random123 kat_vectors file. Returns the number checked."""
    checked = 0
    with open(path) as f:
        for line in f:
            parts = line.split()
            if len(parts) < 2 or parts[0] != "philox4x32":
                continue
            rounds = int(parts[1])
            words = [int(w, 16) for w in parts[2:]]
            ctr, key, expected = words[0:4], words[4:6], words[6:10]
            got = [int(w) for w in philox4x32(ctr, key, rounds)]
            if got != expected:
                raise AssertionError(f"Philox4x32-{rounds} KAT mismatch: {line.strip()} got "
                                     + " ".join(f"{w:08x}" for w in got))
            checked += 1
    return checked


# ---------------------------------------------------------------------------------------------
# Section 2: streams
# ---------------------------------------------------------------------------------------------

def stream_from_name(name: str) -> int:
    h = 0xCBF29CE484222325
    for byte in name.encode("utf-8"):
        h ^= byte
        h = (h * 0x00000100000001B3) & U64_MASK
    return h


# ---------------------------------------------------------------------------------------------
# Section 3: blocks, counters, lanes
# ---------------------------------------------------------------------------------------------

DTYPES = ("f32", "f64", "bf16", "f16")


def lanes_of(dtype: str) -> int:
    return 2 if dtype == "f64" else 4


def block_words(seed: int, stream: int, first_block: int, count: int):
    """Words (w0..w3) of blocks first_block .. first_block+count-1, as np.uint64 arrays."""
    b = np.arange(count, dtype=np.uint64) + np.uint64(first_block)
    key = (seed & U32_MASK, (seed >> 32) & U32_MASK)
    return philox4x32((b & _M32, b >> _S32, stream & U32_MASK, (stream >> 32) & U32_MASK), key)


def element_bits(seed: int, stream: int, dtype: str, n: int):
    """Bits of elements 0 .. N-1 where N is n rounded up to whole blocks (so that every pair of
    a block is available). 32-bit types: np.uint32 k; f64: np.uint64 K."""
    L = lanes_of(dtype)
    nblocks = (n + L - 1) // L
    w0, w1, w2, w3 = block_words(seed, stream, 0, nblocks)
    if L == 4:
        return np.stack([w0, w1, w2, w3], axis=1).reshape(-1).astype(np.uint32)
    K0 = w0 | (w1 << _S32)
    K1 = w2 | (w3 << _S32)
    return np.stack([K0, K1], axis=1).reshape(-1).astype(np.uint64)


# ---------------------------------------------------------------------------------------------
# Section 4: uniforms from bits
# ---------------------------------------------------------------------------------------------

TWO_M24 = 2.0 ** -24
TWO_M32 = 2.0 ** -32
TWO_M53 = 2.0 ** -53
TWO_M64 = 2.0 ** -64


def unit(bits):
    """[0, 1), binary64, exact."""
    if bits.dtype == np.uint32:
        return (bits >> np.uint32(8)).astype(np.float64) * TWO_M24
    return (bits >> np.uint64(11)).astype(np.float64) * TWO_M53


def open64_of_word(k):
    """(k + 1/2) * 2^-32 in binary64 (exact) for 32-bit words k."""
    return (k.astype(np.float64) + 0.5) * TWO_M32


def open_(bits):
    """(0, 1] in the compute type: RN32((k+1/2)2^-32) or RN64((K+1/2)2^-64)."""
    if bits.dtype == np.uint32:
        return open64_of_word(bits).astype(np.float32)  # exact binary64, then one rounding
    hi = (bits >> np.uint64(32)).astype(np.float64) * TWO_M32                      # exact
    lo = ((bits & np.uint64(0xFFFFFFFF)).astype(np.float64) + 0.5) * TWO_M64       # exact
    return hi + lo  # one rounding


def open_far64(bits):
    """Far-tail method: binary64 open uniforms u = open(bits), v = open(~bits) for every dtype."""
    if bits.dtype == np.uint32:
        return open64_of_word(bits), open64_of_word(~bits)
    return open_(bits), open_(~bits)


# ---------------------------------------------------------------------------------------------
# Section 8: elementary functions (src/math/deterministic_math.hpp, operation for operation)
# ---------------------------------------------------------------------------------------------

_FLT_MIN = np.array(np.finfo(np.float32).tiny, dtype=np.float32)
_DBL_MIN = 2.2250738585072014e-308

_LOGF_SQRTHF = c32("0.707106781186547524")
_LOGF_P = [c32(s) for s in ("7.0376836292e-2", "-1.1514610310e-1", "1.1676998740e-1",
                            "-1.2420140846e-1", "1.4249322787e-1", "-1.6668057665e-1",
                            "2.0000714765e-1", "-2.4999993993e-1", "3.3333331174e-1")]
_LOGF_Q1 = c32("-2.12194440e-4")
_LOGF_Q2 = c32("0.693359375")
_ONE32 = c32("1")
_HALF32 = c32("0.5")
_MHALF32 = c32("-0.5")
_TWO25_32 = c32("33554432")


def log32(x):
    """Cephes logf, binary32, x > 0 finite (array)."""
    x = np.asarray(x, dtype=np.float32)
    sub = x < _FLT_MIN
    x = np.where(sub, x * _TWO25_32, x).astype(np.float32)
    e = np.where(sub, -25, 0).astype(np.int32)
    bits = x.view(np.uint32)
    e = e + (bits >> np.uint32(23)).astype(np.int32) - np.int32(126)
    m = ((bits & np.uint32(0x007FFFFF)) | np.uint32(0x3F000000)).view(np.float32)
    small = m < _LOGF_SQRTHF
    e = np.where(small, e - np.int32(1), e).astype(np.int32)
    m = np.where(small, (m + m) - _ONE32, m - _ONE32).astype(np.float32)
    z = m * m
    y = np.broadcast_to(_LOGF_P[0], m.shape).astype(np.float32)
    for coef in _LOGF_P[1:]:
        # `y * m - c` with c > 0 is the same IEEE operation as `y * m + (-c)`
        y = y * m + coef
    y = (y * m) * z
    fe = e.astype(np.float32)  # exact
    y = y + _LOGF_Q1 * fe
    y = y + _MHALF32 * z
    r = m + y
    r = r + _LOGF_Q2 * fe
    assert r.dtype == np.float32
    return r


_LN2_HI = 6.93147180369123816490e-01
_LN2_LO = 1.90821492927058770002e-10
_LG = [None, 6.666666666666735130e-01, 3.999999999940941908e-01, 2.857142874366239149e-01,
       2.222219843214978396e-01, 1.818357216161805012e-01, 1.531383769920937332e-01,
       1.479819860511658591e-01]


def log64(x):
    """fdlibm __ieee754_log, binary64, x > 0 finite (array)."""
    x = np.asarray(x, dtype=np.float64)
    sub = x < _DBL_MIN
    x = np.where(sub, x * 18014398509481984.0, x)
    k = np.where(sub, -54, 0).astype(np.int64)
    bits = x.view(np.uint64)
    k = k + (bits >> np.uint64(52)).astype(np.int64) - np.int64(1023)
    mant = bits & np.uint64(0x000FFFFFFFFFFFFF)
    i = (mant + np.uint64(0x95F6400000000)) & np.uint64(0x10000000000000)
    bits = mant | (i ^ np.uint64(0x3FF0000000000000))
    k = k + (i >> np.uint64(52)).astype(np.int64)
    f = bits.view(np.float64) - 1.0
    s = f / (2.0 + f)
    dk = k.astype(np.float64)
    z = s * s
    w = z * z
    t1 = w * (_LG[2] + w * (_LG[4] + w * _LG[6]))
    t2 = z * (_LG[1] + w * (_LG[3] + w * (_LG[5] + w * _LG[7])))
    R = t2 + t1
    hfsq = (0.5 * f) * f
    return dk * _LN2_HI - ((hfsq - (s * (hfsq + R) + dk * _LN2_LO)) - f)


def log64_scalar(x: float) -> float:
    return float(log64(np.array([x]))[0])


def _pow2(k: int) -> float:
    return struct.unpack("<d", struct.pack("<Q", (k + 1023) << 52))[0]


def exp64(x: float) -> float:
    """fdlibm __ieee754_exp, binary64 scalar (Python floats are IEEE binary64, no contraction)."""
    inv_ln2 = 1.44269504088896338700e+00
    P1, P2, P3, P4, P5 = (1.66666666666666019037e-01, -2.77777777770155933842e-03,
                          6.61375632143793436117e-05, -1.65339022054652515390e-06,
                          4.13813679705723846039e-08)
    if x != x:
        return x
    if x > 709.782712893383973096:
        return math.inf
    if x < -745.13321910194110842:
        return 0.0
    k = int(x * inv_ln2 + (-0.5 if x < 0 else 0.5))  # truncation toward zero, as static_cast
    dk = float(k)
    hi = x - dk * _LN2_HI
    lo = dk * _LN2_LO
    r = hi - lo
    t = r * r
    c = r - t * (P1 + t * (P2 + t * (P3 + t * (P4 + t * P5))))
    y = 1.0 - ((lo - (r * c) / (2.0 - c)) - hi)
    if k >= -1021:
        return y * _pow2(k)
    return (y * _pow2(k + 1000)) * _pow2(-1000)


_SIN32 = [c32(s) for s in ("-1.9515295891e-4", "8.3321608736e-3", "-1.6666654611e-1")]
_COS32 = [c32(s) for s in ("2.443315711809948e-5", "-1.388731625493765e-3", "4.166664568298827e-2")]


def sin_octant32(x):
    z = x * x
    y = np.broadcast_to(_SIN32[0], x.shape).astype(np.float32)
    for coef in _SIN32[1:]:
        y = y * z + coef
    return x + (y * z) * x


def cos_octant32(x):
    z = x * x
    y = np.broadcast_to(_COS32[0], x.shape).astype(np.float32)
    for coef in _COS32[1:]:
        y = y * z + coef
    return (_ONE32 - _HALF32 * z) + (y * z) * z


_SIN64 = (1.58962301576546568060e-10, -2.50507477628578072866e-8, 2.75573136213857245213e-6,
          -1.98412698295895385996e-4, 8.33333333332211858878e-3, -1.66666666666666307295e-1)
_COS64 = (-1.13585365213876817300e-11, 2.08757008419747316778e-9, -2.75573141792967388112e-7,
          2.48015872888517045348e-5, -1.38888888888730564116e-3, 4.16666666666665929218e-2)


def sin_octant64(x):
    z = x * x
    y = np.full(x.shape, _SIN64[0])
    for coef in _SIN64[1:]:
        y = y * z + coef
    return x + (y * z) * x


def cos_octant64(x):
    z = x * x
    y = np.full(x.shape, _COS64[0])
    for coef in _COS64[1:]:
        y = y * z + coef
    return (1.0 - 0.5 * z) + (y * z) * z


# PPND7 (binary32)
_P7_A = [c32(s) for s in ("5.9109374720e+1", "1.5929113202e+2", "5.0434271938e+1", "3.3871327179e+0")]
_P7_B = [c32(s) for s in ("6.7187563600e+1", "7.8757757664e+1", "1.7895169469e+1", "1.0")]
_P7_C = [c32(s) for s in ("1.7023821103e-1", "1.3067284816e+0", "2.7568153900e+0", "1.4234372777e+0")]
_P7_D = [c32(s) for s in ("1.2021132975e-1", "7.3700164250e-1", "1.0")]
_P7_E = [c32(s) for s in ("1.7337203997e-2", "4.2868294337e-1", "3.0812263860e+0", "6.6579051150e+0")]
_P7_F = [c32(s) for s in ("1.2258202635e-2", "2.4197894225e-1", "1.0")]
_P7_SPLIT1 = c32("0.425")
_P7_MSPLIT1 = c32("-0.425")
_P7_CONST1 = c32("0.180625")
_P7_SPLIT2 = c32("5.0")
_P7_CONST2 = c32("1.6")
_ZERO32 = c32("0")


def _horner(coefs, r):
    acc = coefs[0] * r + coefs[1]
    for coef in coefs[2:]:
        acc = acc * r + coef
    return acc


def ppnd7(p):
    """Wichura AS 241 PPND7 in binary32, p in (0, 1) (array)."""
    p = np.asarray(p, dtype=np.float32)
    q = p - _HALF32
    central = (q <= _P7_SPLIT1) & (q >= _P7_MSPLIT1)
    r = _P7_CONST1 - q * q
    v_central = (q * _horner(_P7_A, r)) / _horner(_P7_B, r)
    with np.errstate(all="ignore"):
        rt = np.where(q < _ZERO32, p, _ONE32 - p).astype(np.float32)
        rt = np.where(central, _HALF32, rt).astype(np.float32)  # keep the unused lanes harmless
        rt = np.sqrt(-log32(rt))
        ra = rt - _P7_CONST2
        va = _horner(_P7_C, ra) / _horner(_P7_D, ra)
        rb = rt - _P7_SPLIT2
        vb = _horner(_P7_E, rb) / _horner(_P7_F, rb)
    v_tail = np.where(rt <= _P7_SPLIT2, va, vb).astype(np.float32)
    v_tail = np.where(q < _ZERO32, -v_tail, v_tail).astype(np.float32)
    out = np.where(central, v_central, v_tail).astype(np.float32)
    assert v_central.dtype == np.float32 and va.dtype == np.float32 and vb.dtype == np.float32
    return out


# PPND16 (binary64)
_P16_A = (2.5090809287301226727e+3, 3.3430575583588128105e+4, 6.7265770927008700853e+4,
          4.5921953931549871457e+4, 1.3731693765509461125e+4, 1.9715909503065514427e+3,
          1.3314166789178437745e+2, 3.3871328727963666080e+0)
_P16_B = (5.2264952788528545610e+3, 2.8729085735721942674e+4, 3.9307895800092710610e+4,
          2.1213794301586595867e+4, 5.3941960214247511077e+3, 6.8718700749205790830e+2,
          4.2313330701600911252e+1, 1.0)
_P16_C = (7.74545014278341407640e-4, 2.27238449892691845833e-2, 2.41780725177450611770e-1,
          1.27045825245236838258e+0, 3.64784832476320460504e+0, 5.76949722146069140550e+0,
          4.63033784615654529590e+0, 1.42343711074968357734e+0)
_P16_D = (1.05075007164441684324e-9, 5.47593808499534494600e-4, 1.51986665636164571966e-2,
          1.48103976427480074590e-1, 6.89767334985100004550e-1, 1.67638483018380384940e+0,
          2.05319162663775882187e+0, 1.0)
_P16_E = (2.01033439929228813265e-7, 2.71155556874348757815e-5, 1.24266094738807843860e-3,
          2.65321895265761230930e-2, 2.96560571828504891230e-1, 1.78482653991729133580e+0,
          5.46378491116411436990e+0, 6.65790464350110377720e+0)
_P16_F = (2.04426310338993978564e-15, 1.42151175831644588870e-7, 1.84631831751005468180e-5,
          7.86869131145613259100e-4, 1.48753612908506148525e-2, 1.36929880922735805310e-1,
          5.99832206555887937690e-1, 1.0)


def ppnd16(p):
    """Wichura AS 241 PPND16 in binary64, p in (0, 1) (array)."""
    p = np.asarray(p, dtype=np.float64)
    q = p - 0.5
    central = (q <= 0.425) & (q >= -0.425)
    r = 0.180625 - q * q
    v_central = (q * _horner(_P16_A, r)) / _horner(_P16_B, r)
    with np.errstate(all="ignore"):
        rt = np.where(q < 0.0, p, 1.0 - p)
        rt = np.where(central, 0.5, rt)
        rt = np.sqrt(-log64(rt))
        ra = rt - 1.6
        va = _horner(_P16_C, ra) / _horner(_P16_D, ra)
        rb = rt - 5.0
        vb = _horner(_P16_E, rb) / _horner(_P16_F, rb)
    v_tail = np.where(rt <= 5.0, va, vb)
    v_tail = np.where(q < 0.0, -v_tail, v_tail)
    return np.where(central, v_central, v_tail)


# Q, phi, mills (binary64)

_INV_SQRT_2PI = 0.398942280401432677939946059934  # RN64(1/sqrt(2 pi)), checked in self_test()


def normal_density(x: float) -> float:
    xh = struct.unpack("<d", struct.pack("<Q", struct.unpack("<Q", struct.pack("<d", x))[0]
                                          & 0xFFFFFFFFF8000000))[0]
    xl = x - xh
    big = xh * xh
    small = ((xh + xh) + xl) * xl
    return _INV_SQRT_2PI * (exp64(-0.5 * big) * exp64(-0.5 * small))


def mills(x, depth: int):
    """Laplace continued fraction, backwards; scalar float or float64 array."""
    t = x
    for k in range(depth, 0, -1):
        t = x + float(k) / t
    return 1.0 / t


def mills_depth(x: float) -> int:
    return 1000 if x < 2.0 else 200 if x < 4.0 else 50 if x < 8.0 else 20


def Q_upper(x: float) -> float:
    """Q(x) = 1 - Phi(x) for x >= 0."""
    if x < 1.0:
        s = 0.0
        term = x
        for n in range(60):
            s += term
            term = term * (x * x) / float(2 * n + 3)
        return 0.5 - normal_density(x) * s
    if x == math.inf:
        return 0.0
    return normal_density(x) * mills(x, mills_depth(x))


def Q_any(x: float) -> float:
    """Section 5.4: Q(x) = 1 - Q(-x) for x < 0."""
    return Q_upper(x) if x >= 0 else 1.0 - Q_upper(-x)


def Phi_any(x: float) -> float:
    """Section 5.4: Phi(x) = Q(-x) for x <= 0, 1 - Q(x) for x > 0."""
    return Q_upper(-x) if x <= 0 else 1.0 - Q_upper(x)


# ---------------------------------------------------------------------------------------------
# Section 6: f32 -> bf16 / f16, round to nearest even, in integer arithmetic
# ---------------------------------------------------------------------------------------------

def f32_to_bf16_bits(bits32):
    b = bits32.astype(np.uint64)
    bias = np.uint64(0x7FFF) + ((b >> np.uint64(16)) & np.uint64(1))
    return ((b + bias) >> np.uint64(16)).astype(np.uint16)


def f32_to_f16_bits(bits32):
    b = bits32.astype(np.int64)
    sign = (b >> 16) & 0x8000
    e = (b >> 23) & 0xFF
    m = b & 0x7FFFFF
    # normal f16 range: biased f16 exponent e - 112 in [1, 30]
    base = ((e - 112) << 10) | (m >> 13)
    rem = m & 0x1FFF
    up = (rem > 0x1000) | ((rem == 0x1000) & ((base & 1) == 1))
    normal = base + up  # a carry rolls into the exponent, as it should
    # subnormal f16 (or zero): value = sig * 2^(e-150), unit 2^-24 -> sig >> (126 - e)
    sig = np.where(e == 0, m, m | 0x800000)  # f32 subnormals are far below half the f16 unit
    shift = np.clip(126 - e, 1, 40)
    qv = sig >> shift
    rem2 = sig & ((np.int64(1) << shift) - 1)
    half = np.int64(1) << (shift - 1)
    up2 = (rem2 > half) | ((rem2 == half) & ((qv & 1) == 1))
    subn = qv + up2
    overflow = (e - 112) >= 31
    if np.any(overflow):
        raise ValueError("f16 overflow (the specification says this cannot happen)")
    out = np.where(e - 112 >= 1, normal, subn) | sign
    return out.astype(np.uint16)


# ---------------------------------------------------------------------------------------------
# Bounds helpers (section 5: "least Real >= a", "greatest Real < b", over finite values)
# ---------------------------------------------------------------------------------------------

def _least_f32_ge(a: float) -> np.float32:
    x = F32(a)
    if float(x) < a:
        x = np.nextafter(x, F32(np.inf))
    return x


def _greatest_f32_le(b: float) -> np.float32:
    x = F32(b)
    if float(x) > b:
        x = np.nextafter(x, F32(-np.inf))
    return x


def _greatest_f32_lt(b: float) -> np.float32:
    x = F32(b)
    if float(x) >= b:
        x = np.nextafter(x, F32(-np.inf))
    return x


def _clamp(x, lo, hi):
    x = np.where(x < lo, lo, x)
    return np.where(x > hi, hi, x)


# ---------------------------------------------------------------------------------------------
# Section 5: distributions. Each returns compute-type values for elements 0 .. N-1 (N a whole
# number of blocks); generate() trims and converts.
# ---------------------------------------------------------------------------------------------

def _constant(dtype, n, value):
    if dtype == "f64":
        return np.full(n, value, dtype=np.float64)
    return np.full(n, F32(value), dtype=np.float32)


def _uniform(dtype, bits, a: float, b: float):
    v = a + ((b - a) * unit(bits))  # binary64
    if dtype == "f64":
        lo = a
        hi = float(np.nextafter(b, -np.inf))
        if not lo <= hi:
            return np.full(bits.shape, a, dtype=np.float64)
        return _clamp(v, lo, hi)
    lo = _least_f32_ge(a)
    hi = _greatest_f32_lt(b)
    if not lo <= hi:
        return np.full(bits.shape, F32(a), dtype=np.float32)
    x = v.astype(np.float32)
    return _clamp(x, np.array(lo, np.float32), np.array(hi, np.float32)).astype(np.float32)


_HALF_PI_2M22_32 = np.array(F32((math.pi / 2) * 2.0 ** -22), dtype=np.float32)  # RN32(RN64(pi/2) 2^-22)
_HALF_PI_2M51 = (math.pi / 2) * 2.0 ** -51                                     # exact


def _normal(dtype, bits, mean: float, std: float):
    n = bits.shape[0]
    if std == 0:
        return _constant(dtype, n, mean)
    r_bits = bits[0::2]
    t_bits = bits[1::2]
    if dtype == "f64":
        u = open_(r_bits)
        rho = np.sqrt(-2.0 * log64(u))
        t53 = t_bits >> np.uint64(11)
        q = (t53 >> np.uint64(51)).astype(np.int64)
        m = t53 & np.uint64((1 << 51) - 1)
        reflect = m > np.uint64(1 << 50)
        h = np.where(reflect, np.uint64(1 << 51) - m, m)
        phi = h.astype(np.float64) * _HALF_PI_2M51  # h <= 2^50: exact conversion
        S = sin_octant64(phi)
        C = cos_octant64(phi)
        mean_r, std_r = np.float64(mean), np.float64(std)
    else:
        u = open_(r_bits)
        rho = np.sqrt(c32("-2") * log32(u))
        t24 = t_bits >> np.uint32(8)
        q = (t24 >> np.uint32(22)).astype(np.int64)
        m = t24 & np.uint32((1 << 22) - 1)
        reflect = m > np.uint32(1 << 21)
        h = np.where(reflect, np.uint32(1 << 22) - m, m)
        phi = h.astype(np.float32) * _HALF_PI_2M22_32  # R(h): exact
        S = sin_octant32(phi)
        C = cos_octant32(phi)
        mean_r = np.array(F32(mean), dtype=np.float32)
        std_r = np.array(F32(std), dtype=np.float32)
    S, C = np.where(reflect, C, S), np.where(reflect, S, C)
    c = np.select([q == 0, q == 1, q == 2], [C, -S, -C], S)
    s = np.select([q == 0, q == 1, q == 2], [S, C, -S], -C)
    even = mean_r + std_r * (rho * c)
    odd = mean_r + std_r * (rho * s)
    out = np.empty(n, dtype=even.dtype)
    out[0::2] = even
    out[1::2] = odd
    if dtype != "f64":
        assert out.dtype == np.float32
    return out


def _narrow_span(alpha: float, beta: float) -> float:
    """Section 5.4: the change of log density over [alpha, beta], measured from alpha."""
    if alpha < 0 < beta:
        return 0.5 * max(alpha * alpha, abs((beta - alpha) * (beta + alpha)))
    return 0.5 * abs((beta - alpha) * (beta + alpha))


def trunc_normal_method(mean: float, std: float, a: float, b: float) -> str:
    alpha = (a - mean) / std
    beta = (b - mean) / std
    if alpha >= 8:
        return "far-upper"
    if beta <= -8:
        return "far-lower"
    if _narrow_span(alpha, beta) <= 1.0 / 16:
        return "narrow"
    return "central"


def narrow_integral(alpha: float, y):
    """Section 5.4: I(y) by its 32-term Hermite series, elementwise over a binary64 array y."""
    he, he_prev = 1.0, 0.0
    t = np.ones_like(y)
    total = np.zeros_like(y)
    for k in range(32):
        total = total + he * t
        he, he_prev = (alpha * he) - (k * he_prev), he
        t = (t * (-y)) / float(k + 2)
    return y * total


def _trunc_normal(dtype, bits, mean: float, std: float, a: float, b: float):
    n = bits.shape[0]
    if dtype == "f64":
        lo, hi = a, b
    else:
        lo, hi = _least_f32_ge(a), _greatest_f32_le(b)
    if not lo <= hi:
        return _constant(dtype, n, a)
    alpha = (a - mean) / std
    beta = (b - mean) / std
    method = trunc_normal_method(mean, std, a, b)
    if method == "narrow":
        w = beta - alpha
        I_w = float(narrow_integral(alpha, np.array([w]))[0])
        u, _ = open_far64(bits)
        T = u * I_w
        y = u * w
        for _ in range(4):
            density = np.array([exp64(float(g)) for g in -((alpha * y) + (0.5 * (y * y)))])
            y = y - (narrow_integral(alpha, y) - T) / density
            y = _clamp(y, 0.0, w)
        value = _clamp(mean + std * (alpha + y), a, b)
        if dtype == "f64":
            return _clamp(value, lo, hi)
        return _clamp(value.astype(np.float32), np.array(lo, np.float32),
                      np.array(hi, np.float32)).astype(np.float32)
    if method == "central":
        P_alpha = Phi_any(alpha)
        Q_beta = Q_any(beta)
        if alpha >= 0:
            delta = Q_any(alpha) - Q_any(beta)
        elif beta <= 0:
            delta = Q_any(-beta) - Q_any(-alpha)
        else:
            delta = (1.0 - Q_any(-alpha)) - Q_any(beta)
        if dtype == "f64":
            P, Qb, D, mu, sd = P_alpha, Q_beta, delta, mean, std
            ppnd, half = ppnd16, 0.5
        else:
            P, Qb, D, mu, sd = (np.array(F32(v), dtype=np.float32)
                                for v in (P_alpha, Q_beta, delta, mean, std))
            ppnd, half = ppnd7, _HALF32
        u = open_(bits)
        p_low = P + u * D
        low = p_low <= half
        v = open_(~bits)
        p_high = Qb + v * D
        with np.errstate(all="ignore"):
            x_low = ppnd(np.where(low, p_low, half))
            x_high = -ppnd(np.where(low, half, p_high))
        x = np.where(low, x_low, x_high)
        value = mu + sd * x
        if dtype == "f64":
            return _clamp(value, lo, hi)
        assert value.dtype == np.float32
        return _clamp(value, np.array(lo, np.float32), np.array(hi, np.float32)).astype(np.float32)

    # far-tail method, binary64 for every dtype
    lower = not alpha >= 8
    if lower:
        alpha, beta = -beta, -alpha
    R_alpha = mills(alpha, mills_depth(alpha))
    ratio = exp64(-0.5 * ((beta - alpha) * (beta + alpha))) * (mills(beta, mills_depth(beta)) / R_alpha)
    u, v = open_far64(bits)
    E = -log64(v + u * ratio)
    y = (E + E) / (alpha + np.sqrt(alpha * alpha + (E + E)))
    for _ in range(4):
        x = alpha + y
        R = mills(x, 20)
        h = (((alpha * y) + (0.5 * (y * y))) - log64(R / R_alpha)) - E
        y = y - h * R
        y = np.where(y < 0, 0.0, y)
    x = alpha + y
    if lower:
        x = -x
    value = mean + std * x
    value = _clamp(value, a, b)
    if dtype == "f64":
        return _clamp(value, lo, hi)
    return _clamp(value.astype(np.float32), np.array(lo, np.float32),
                  np.array(hi, np.float32)).astype(np.float32)


def compute_values(seed: int, stream: int, dtype: str, dist: dict, n: int):
    """Compute-type values (float32 or float64 array) of elements 0 .. n-1."""
    kind = dist["kind"]
    if kind == "constant":
        return _constant(dtype, n, float(dist["value"]))
    bits = element_bits(seed, stream, dtype, n)
    if kind == "uniform":
        out = _uniform(dtype, bits, float(dist["a"]), float(dist["b"]))
    elif kind == "normal":
        out = _normal(dtype, bits, float(dist["mean"]), float(dist["std"]))
    elif kind == "trunc_normal":
        out = _trunc_normal(dtype, bits, float(dist["mean"]), float(dist["std"]),
                            float(dist["a"]), float(dist["b"]))
    else:
        raise ValueError(f"unknown distribution {kind!r}")
    return out[:n]


def generate(seed: int, stream: int, dtype: str, dist: dict, n: int):
    """The stored bits of elements 0 .. n-1: uint32 (f32), uint64 (f64), uint16 (bf16, f16)."""
    values = compute_values(seed, stream, dtype, dist, n)
    if dtype == "f64":
        assert values.dtype == np.float64
        return values.view(np.uint64).copy()
    assert values.dtype == np.float32
    bits32 = values.view(np.uint32)
    if dtype == "f32":
        return bits32.copy()
    if dtype == "bf16":
        return f32_to_bf16_bits(bits32)
    if dtype == "f16":
        return f32_to_f16_bits(bits32)
    raise ValueError(dtype)


# ---------------------------------------------------------------------------------------------
# Section 5.5: colossalai.nn.init (formulas and operation order as in colossalai/nn/init.py)
# ---------------------------------------------------------------------------------------------

def calculate_gain(nonlinearity: str, param=None) -> float:
    """torch.nn.init.calculate_gain."""
    linear_fns = ["linear", "conv1d", "conv2d", "conv3d", "conv_transpose1d", "conv_transpose2d",
                  "conv_transpose3d"]
    if nonlinearity in linear_fns or nonlinearity == "sigmoid":
        return 1
    if nonlinearity == "tanh":
        return 5.0 / 3
    if nonlinearity == "relu":
        return math.sqrt(2.0)
    if nonlinearity == "leaky_relu":
        negative_slope = 0.01 if param is None else param
        return math.sqrt(2.0 / (1 + negative_slope ** 2))
    if nonlinearity == "selu":
        return 3.0 / 4
    raise ValueError(f"Unsupported nonlinearity {nonlinearity}")


def fans_from_shape(shape):
    if len(shape) < 2:
        return None, None
    receptive = 1
    for d in shape[2:]:
        receptive *= d
    return shape[1] * receptive, shape[0] * receptive


def distribution_from_initializer(fn: str, params: dict, fan_in=None, fan_out=None) -> dict:
    p = params
    if fn == "zeros":
        return {"kind": "constant", "value": 0.0}
    if fn == "ones":
        return {"kind": "constant", "value": 1.0}
    if fn == "constant":  # torch.nn.init.constant_(tensor, val)
        return {"kind": "constant", "value": float(p["val"])}
    if fn == "uniform":
        return {"kind": "uniform", "a": float(p.get("a", 0.0)), "b": float(p.get("b", 1.0))}
    if fn == "normal":
        return {"kind": "normal", "mean": float(p.get("mean", 0.0)), "std": float(p.get("std", 1.0))}
    if fn == "trunc_normal":
        return {"kind": "trunc_normal", "mean": float(p.get("mean", 0.0)), "std": float(p.get("std", 1.0)),
                "a": float(p.get("a", -2.0)), "b": float(p.get("b", 2.0))}
    if fn in ("kaiming_uniform", "kaiming_normal"):
        a = p.get("a", 0)
        mode = p.get("mode", "fan_in")
        nonlinearity = p.get("nonlinearity", "leaky_relu")
        fan = fan_in if mode == "fan_in" else fan_out
        assert fan is not None
        std = calculate_gain(nonlinearity, a) / math.sqrt(fan)
        if fn == "kaiming_uniform":
            bound = math.sqrt(3.0) * std
            return {"kind": "uniform", "a": -bound, "b": bound}
        return {"kind": "normal", "mean": 0.0, "std": float(std)}
    if fn == "xavier_uniform":
        a = p.get("a", math.sqrt(3.0))
        scale = p.get("scale", 2.0)
        gain = p.get("gain", 1.0)
        fan = fan_in
        if fan_out is not None:
            fan += fan_out
        std = gain * math.sqrt(scale / float(fan))
        bound = a * std
        return {"kind": "uniform", "a": float(-bound), "b": float(bound)}
    if fn == "xavier_normal":
        scale = p.get("scale", 2.0)
        gain = p.get("gain", 1.0)
        fan = fan_in
        if fan_out is not None:
            fan += fan_out
        std = gain * math.sqrt(scale / float(fan))
        return {"kind": "normal", "mean": 0.0, "std": float(std)}
    if fn == "lecun_uniform":
        var = 1.0 / fan_in
        bound = math.sqrt(3 * var)
        return {"kind": "uniform", "a": -bound, "b": bound}
    if fn == "lecun_normal":
        std = math.sqrt(1.0 / fan_in)
        return {"kind": "trunc_normal", "mean": 0.0, "std": std / .87962566103423978, "a": -2.0, "b": 2.0}
    raise ValueError(f"unknown initializer {fn!r}")


# ---------------------------------------------------------------------------------------------
# Self test
# ---------------------------------------------------------------------------------------------

def self_test(kat_path=None) -> int:
    from decimal import Decimal, getcontext
    getcontext().prec = 60
    pi = Decimal("3.14159265358979323846264338327950288419716939937510582097494459")
    inv = Decimal(1) / (2 * pi).sqrt()
    assert float(inv) == _INV_SQRT_2PI, "c != RN64(1/sqrt(2 pi))"  # float(Decimal) rounds correctly
    # f16 conversion agrees with NumPy's (round to nearest even) on a sweep of float32 values
    rng = np.random.default_rng(1)
    probe = np.concatenate([rng.integers(0, 2**32, 200000, dtype=np.uint64).astype(np.uint32),
                            np.arange(0x33000000 - 5000, 0x33000000 + 5000, dtype=np.uint32),
                            np.arange(0x38800000 - 5000, 0x38800000 + 5000, dtype=np.uint32)])
    vals = probe.view(np.float32)
    ok = np.isfinite(vals) & (np.abs(vals) < 65504)
    assert np.array_equal(f32_to_f16_bits(probe[ok]), vals[ok].astype(np.float16).view(np.uint16))
    assert stream_from_name("") == 0xCBF29CE484222325
    assert stream_from_name("a") == 0xAF63DC4C8601EC8C
    n = 0
    if kat_path is not None:
        n = check_philox_kat(kat_path)
    return n


if __name__ == "__main__":
    import os
    import sys
    here = os.path.dirname(os.path.abspath(__file__))
    kat = sys.argv[1] if len(sys.argv) > 1 else os.path.join(here, "..", "data", "philox_kat_vectors.txt")
    count = self_test(kat)
    print(f"stream_format_v1: self test passed ({count} Philox4x32 KAT vectors)")
