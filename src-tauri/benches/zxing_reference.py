#!/usr/bin/env python3
"""Reference decoder for the scan benchmark: zxing-cpp over the same files.

Usage: zxing_reference.py FOLDER            (every image file, sorted by name)
       zxing_reference.py FOLDER --stdin    (the file names read from stdin,
                                             one a line, answered one by one)
Prints one JSON line per image file, the same shape as
`entrada-decode`: {"file": NAME, "payloads": [...], "ms": DECODE_MS}.
With --stdin the benchmark asks for each frame right after decoding it with
our pipeline, so both decoders meet the same machine load (interleaved).
`ms` times only zxingcpp.read_barcodes on an already-loaded grayscale image,
so file decoding is excluded on both sides; of 3 runs, the one with the
median time is reported (the benchmark does the same for our decoder). QR codes only, zxing-cpp's
default options otherwise (local-average binariser, try rotate/downscale).

Install: pip install zxing-cpp pillow
"""
import json
import os
import sys
import time

try:
    import zxingcpp
    from PIL import Image
except ImportError as e:  # the benchmark prints install instructions
    print(f"missing dependency: {e}; run: pip install zxing-cpp pillow", file=sys.stderr)
    sys.exit(3)

EXTS = (".png", ".jpg", ".jpeg", ".bmp")


def main() -> int:
    if len(sys.argv) not in (2, 3) or (len(sys.argv) == 3 and sys.argv[2] != "--stdin"):
        print(__doc__, file=sys.stderr)
        return 2
    folder = sys.argv[1]
    if len(sys.argv) == 3:
        names = (line.strip() for line in sys.stdin)
    else:
        names = sorted(n for n in os.listdir(folder) if n.lower().endswith(EXTS))
    fmt = zxingcpp.BarcodeFormat.QRCode
    for name in names:
        if not name:
            continue
        img = Image.open(os.path.join(folder, name)).convert("L")
        img.load()
        # Same protocol as the Rust side: 3 runs, the median-time run counts.
        runs = []
        for _ in range(3):
            start = time.perf_counter()
            res = zxingcpp.read_barcodes(img, formats=fmt)
            runs.append(((time.perf_counter() - start) * 1000.0, res))
        runs.sort(key=lambda r: r[0])
        ms, found = runs[1]
        payloads = []
        for b in found:
            if b.text not in payloads:
                payloads.append(b.text)
        print(json.dumps({"file": name, "payloads": payloads, "ms": ms}), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
