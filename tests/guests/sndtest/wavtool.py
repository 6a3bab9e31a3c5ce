#!/usr/bin/env python3
"""Host-side WAV helpers for the sound tests (tests/integration/sound_*.sh),
the python3 standard library only (wave, math, struct).

  wavtool.py sine OUT.wav --rate 48000 --channels 2 --freq 997[,1499] --seconds 3
             [--amp 12000] [--phase 0.7]
      S16 sine(s), one frequency per channel (the last one repeats); the phase
      offset keeps the first sample from being 0, so a leading silence that a
      device added shows up as a mismatch.
  wavtool.py info F.wav
      rate, channels, sample width and frames, one line.
  wavtool.py dominant F.wav [--channel 0] [--skip-frames N] [--max-frames 65536]
      The strongest frequency from 20 Hz to min(rate/2, 20 kHz), Goertzel on a
      coarse grid then windows twice as long around the best point, then a golden-
      section search: prints `dominant=XXXX.XX` (Hz) and `rms=` and `frames=`.
  wavtool.py fnv F.wav [--frames N]
      FNV-1a (32-bit) of the first N frames' bytes (all of them by default):
      what sndtest prints as tx_fnv=/rx_fnv=.
  wavtool.py compare OUT.wav IN.wav --frames N
      Exit 0 if OUT.wav's data is bit-for-bit IN.wav's first N frames (same rate,
      channels, width); else says where they part (and whether OUT is IN shifted).

Exit status: 0 ok, 1 a comparison failed, 2 usage or an unreadable file.
"""
import argparse
import math
import struct
import sys
import wave


def read_wav(path):
    try:
        with wave.open(path, "rb") as w:
            params = w.getparams()
            data = w.readframes(params.nframes)
    except (OSError, EOFError, wave.Error) as e:
        print(f"wavtool: {path}: {e}", file=sys.stderr)
        sys.exit(2)
    if params.sampwidth != 2:
        print(f"wavtool: {path}: {8 * params.sampwidth}-bit samples, want 16", file=sys.stderr)
        sys.exit(2)
    return params, data


def samples(params, data, channel, skip=0, limit=None):
    n = len(data) // (2 * params.nchannels)
    vals = struct.unpack("<%dh" % (n * params.nchannels), data[: n * 2 * params.nchannels])
    ch = vals[channel :: params.nchannels][skip:]
    return list(ch[:limit] if limit else ch)


def cmd_sine(a):
    freqs = [float(f) for f in a.freq.split(",")]
    frames = int(a.rate * a.seconds)
    out = bytearray()
    for i in range(frames):
        t = i / a.rate
        for c in range(a.channels):
            f = freqs[min(c, len(freqs) - 1)]
            v = int(round(a.amp * math.sin(2 * math.pi * f * t + a.phase + c)))
            out += struct.pack("<h", max(-32768, min(32767, v)))
    with wave.open(a.out, "wb") as w:
        w.setnchannels(a.channels)
        w.setsampwidth(2)
        w.setframerate(a.rate)
        w.writeframes(bytes(out))
    print(f"wavtool: wrote {a.out}: {frames} frames, {a.channels} ch at {a.rate} Hz, freq {a.freq}")
    return 0


def cmd_info(a):
    p, data = read_wav(a.file)
    print(f"rate={p.framerate} channels={p.nchannels} width={p.sampwidth} frames={p.nframes} "
          f"bytes={len(data)}")
    return 0


def goertzel_power(x, f, rate):
    w = 2 * math.pi * f / rate
    c = 2 * math.cos(w)
    s1 = s2 = 0.0
    for v in x:
        s1, s2 = v + c * s1 - s2, s1
    return s1 * s1 + s2 * s2 - c * s1 * s2


def dominant(x, rate, lo=20.0, hi=None):
    hi = min(hi or 20000.0, rate / 2 - 1)
    if not any(x):
        return 0.0
    n = len(x)
    length = min(n, 2048)
    step = rate / (2 * length)
    best, bp, f = lo, -1.0, lo
    while f <= hi:
        p = goertzel_power(x[:length], f, rate)
        if p > bp:
            best, bp = f, p
        f += step
    while length < n:
        length = min(2 * length, n)
        nstep = rate / (2 * length)
        bp = -1.0
        f = max(lo, best - step)
        while f <= best + step:
            p = goertzel_power(x[:length], f, rate)
            if p > bp:
                nbest, bp = f, p
            f += nstep
        best, step = nbest, nstep
    # golden-section search inside the main lobe
    a, b = best - step, best + step
    g = (math.sqrt(5) - 1) / 2
    c, d = b - g * (b - a), a + g * (b - a)
    pc, pd = goertzel_power(x, c, rate), goertzel_power(x, d, rate)
    while b - a > 1e-3:
        if pc > pd:
            b, d, pd = d, c, pc
            c = b - g * (b - a)
            pc = goertzel_power(x, c, rate)
        else:
            a, c, pc = c, d, pd
            d = a + g * (b - a)
            pd = goertzel_power(x, d, rate)
    return (a + b) / 2


def cmd_dominant(a):
    p, data = read_wav(a.file)
    x = samples(p, data, a.channel, a.skip_frames, a.max_frames)
    if len(x) < 64:
        print(f"wavtool: {a.file}: only {len(x)} frames to analyse", file=sys.stderr)
        return 2
    f = dominant([float(v) for v in x], p.framerate)
    rms = math.sqrt(sum(v * v for v in x) / len(x))
    print(f"dominant={f:.2f} rms={rms:.0f} frames={len(x)}")
    return 0


def fnv1a(b, h=0x811C9DC5):
    for byte in b:
        h = ((h ^ byte) * 16777619) & 0xFFFFFFFF
    return h


def cmd_fnv(a):
    p, data = read_wav(a.file)
    fb = 2 * p.nchannels
    if a.frames is not None:
        if a.frames * fb > len(data):
            print(f"wavtool: {a.file} has {len(data) // fb} frames, not {a.frames}", file=sys.stderr)
            return 1
        data = data[: a.frames * fb]
    print(f"fnv=0x{fnv1a(data):08x} frames={len(data) // fb}")
    return 0


def cmd_compare(a):
    po, out = read_wav(a.out)
    pi, inp = read_wav(a.inp)
    if (po.framerate, po.nchannels) != (pi.framerate, pi.nchannels):
        print(f"wavtool: format differs: out {po.framerate} Hz {po.nchannels} ch, "
              f"in {pi.framerate} Hz {pi.nchannels} ch")
        return 1
    fb = 2 * pi.nchannels
    want = inp[: a.frames * fb]
    if len(want) < a.frames * fb:
        print(f"wavtool: {a.inp} has only {len(inp) // fb} frames, not {a.frames}")
        return 2
    if out == want:
        print(f"wavtool: identical: {a.frames} frames")
        return 0
    print(f"wavtool: DIFFERENT: out has {len(out) // fb} frames, want {a.frames}")
    if out.startswith(want):
        extra = out[len(want):]
        print(f"wavtool: out is in's {a.frames} frames followed by {len(extra) // fb} more "
              f"({'all silent' if not any(extra) else 'not silent'})")
        return 1
    n = min(len(out), len(want))
    first = next((i for i in range(n) if out[i] != want[i]), n)
    print(f"wavtool: first difference at frame {first // fb} (byte {first})")
    lead = 0
    while lead < len(out) // fb and out[lead * fb:(lead + 1) * fb] == b"\0" * fb:
        lead += 1
    if lead:
        print(f"wavtool: out starts with {lead} silent frames")
    probe = want[: 64 * fb]
    at = out.find(probe)
    if at >= 0 and at % fb == 0:
        print(f"wavtool: in's first 64 frames are at out frame {at // fb}")
    else:
        at = want.find(out[: 64 * fb])
        if at >= 0:
            print(f"wavtool: out's first 64 frames are in's frames from {at // fb}")
    return 1


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = ap.add_subparsers(dest="cmd", required=True)
    s = sub.add_parser("sine")
    s.add_argument("out")
    s.add_argument("--rate", type=int, default=48000)
    s.add_argument("--channels", type=int, default=2)
    s.add_argument("--freq", default="1000")
    s.add_argument("--seconds", type=float, default=1.0)
    s.add_argument("--amp", type=float, default=12000)
    s.add_argument("--phase", type=float, default=0.7)
    s = sub.add_parser("info")
    s.add_argument("file")
    s = sub.add_parser("dominant")
    s.add_argument("file")
    s.add_argument("--channel", type=int, default=0)
    s.add_argument("--skip-frames", type=int, default=0)
    s.add_argument("--max-frames", type=int, default=65536)
    s = sub.add_parser("fnv")
    s.add_argument("file")
    s.add_argument("--frames", type=int)
    s = sub.add_parser("compare")
    s.add_argument("out")
    s.add_argument("inp")
    s.add_argument("--frames", type=int, required=True)
    a = ap.parse_args()
    return {"sine": cmd_sine, "info": cmd_info, "dominant": cmd_dominant, "fnv": cmd_fnv,
            "compare": cmd_compare}[a.cmd](a)


if __name__ == "__main__":
    sys.exit(main())
