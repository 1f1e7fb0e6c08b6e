"""``kerasmer predict``: from a video (or a folder of frames) to micro-expression predictions.

    kerasmer predict subject01.avi --model saved_models/learnet --out pred
    kerasmer predict frames/ --fps 200 --model learnet.keras --face none --out pred
    kerasmer predict clip.mp4 --model saved_models/learnet --interval 120:141:170 --out pred --video-out
"""

from __future__ import annotations

import sys

from kerasmer.inference import InferenceError, predict_video


def cmd_predict(args) -> int:
    """Run :func:`kerasmer.inference.predict_video`; bad input prints one line and exits with status 2."""
    face = None if args.face == "none" else args.face
    problem = ("--video-out needs --out DIR" if args.video_out and not args.out else
               f"--p must lie in [0, 1), got {args.p}" if args.p is not None and not 0 <= args.p < 1 else
               f"--max-duration must be positive, got {args.max_duration}"
               if args.max_duration is not None and args.max_duration <= 0 else None)
    if problem:
        print(f"kerasmer predict: {problem}", file=sys.stderr)
        return 2
    spotting = {}
    if args.p is not None:
        spotting["p"] = args.p
    if args.max_duration is not None:
        spotting["max_duration_s"] = args.max_duration
    try:
        df = predict_video(args.input, args.model, out=args.out, fps=args.fps, interval=args.interval, face=face,
                           video_out=args.video_out, spotting=spotting, progress=not args.quiet,
                           log=(lambda s: None) if args.quiet else print)
    except InferenceError as err:
        print(f"kerasmer predict: {err}", file=sys.stderr)
        return 2
    if not args.quiet:
        shown = ["onset", "apex", "offset", "onset_s", "offset_s", "label", "score"]
        print(df[shown].to_string(index=False, float_format=lambda v: f"{v:.3f}") if len(df) else "no interval")
    return 0


def add_predict_parser(sub) -> None:
    """Add the ``predict`` subcommand to the ``kerasmer`` parser's subparsers."""
    p = sub.add_parser("predict", help="spot and recognise micro-expressions in a video or a folder of frames",
                       description="Writes predictions.csv/.json, timings.json and motion_curve.png to --out "
                                   "(and annotated.avi with --video-out).")
    p.add_argument("input", help="a video file OpenCV reads, or a folder of frame images")
    p.add_argument("--model", required=True,
                   help="an exported saved_models/<name>[/<version>] (newest version by default) or a .keras file")
    p.add_argument("--out", help="output directory (default: print the predictions only)")
    p.add_argument("--fps", type=float, help="frame rate (default: the video container's; required for a folder)")
    p.add_argument("--interval", metavar="ONSET:APEX:OFFSET", help="recognise these frames, skip spotting")
    p.add_argument("--face", default="haar", choices=("haar", "mtcnn", "none"),
                   help="face detector; 'none' when the frames are already face crops (default: haar)")
    p.add_argument("--video-out", action="store_true", help="also write annotated.avi (face box, current label)")
    p.add_argument("--p", type=float, help="MEGC threshold factor p in mean + p*(max - mean)")
    p.add_argument("--max-duration", type=float, help="longest interval kept, in seconds (default 0.5)")
    p.add_argument("--quiet", action="store_true", help="no progress bar or messages")
    p.set_defaults(func=cmd_predict)
