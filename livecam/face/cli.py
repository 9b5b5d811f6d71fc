"""`livecam faces list DIR|FILES...` and `livecam faces check PATH`."""

from __future__ import annotations

import sys

from livecam.paths import printable


def register(subparsers) -> None:
    from livecam.cli import add_common

    faces = subparsers.add_parser("faces", help="source faces: list a folder, check an image")
    fsub = faces.add_subparsers(dest="faces_command", metavar="ACTION")
    faces.set_defaults(func=lambda args: (faces.print_help(), 2)[1])

    p = fsub.add_parser("list", help="every source face in a folder (or the given files): what was found, warnings")
    add_common(p)
    p.add_argument("paths", nargs="+", metavar="PATH",
                   help="a folder of images (sub-folders = one person each) or image files")
    p.set_defaults(func=cmd_list)

    p = fsub.add_parser("check",
                        help="check one image (or identity folder) as a source face; non-zero exit when unusable")
    add_common(p)
    p.add_argument("path", metavar="PATH")
    p.add_argument("--all-faces", action="store_true", help="also list every face found, largest first")
    p.set_defaults(func=cmd_check)


def _bank(args):
    from livecam.cli import settings_from_args
    from livecam.face.analyser import FaceAnalyser
    from livecam.face.bank import FaceBank
    from livecam.inference.models import ModelLoader

    settings = settings_from_args(args)
    loader = ModelLoader(settings.runtime, models_dir=getattr(args, "models_dir", None))
    analyser = FaceAnalyser(loader, settings)
    return FaceBank(analyser), analyser


def _describe(face) -> str:
    n = len(face.paths)
    what = face.paths[0] if n == 1 else f"{n} images averaged"
    norm = float((face.embedding.astype("float64") ** 2).sum() ** 0.5)
    return printable(f"{face.name:<20} {what}  (embedding norm {norm:.1f})")  # names come from file names


def cmd_list(args) -> int:
    bank, analyser = _bank(args)
    messages = bank.load(args.paths if len(args.paths) > 1 else args.paths[0])
    for face in bank.faces:
        print(_describe(face))
    if not bank.faces:
        print("no usable source faces")
    for m in messages + analyser.warnings:
        print(f"warning: {printable(m, keep_newlines=True)}", file=sys.stderr)
    return 0 if bank.faces else 1


def cmd_check(args) -> int:
    from livecam.face.bank import read_image

    bank, analyser = _bank(args)
    face = bank.add(args.path)  # SourceFaceError -> "error: ... fix: ..." and exit 2
    print(f"ok: {_describe(face)}")
    for w in face.warnings + analyser.warnings:
        print(f"warning: {printable(w, keep_newlines=True)}", file=sys.stderr)
    if args.all_faces and len(face.paths) == 1:
        img = read_image(face.paths[0], analyser.settings.camera.max_image_mp)
        for i, f in enumerate(analyser.analyse(img, embed=False)):
            x1, y1, x2, y2 = (int(round(v)) for v in f.bbox)
            print(f"  face {i}: box ({x1}, {y1}, {x2}, {y2}), {f.size:.0f} px, score {f.score:.2f}")
    return 0
