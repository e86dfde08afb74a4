"""DenseLens's command line: a front end to ``model/`` like ``gui/``, and the only home of argparse.

``main`` parses and dispatches; each command (``classify``, ``explain``, ``info``, ``train``) is a module
with ``add_parser(subparsers)`` and ``run(args)``; ``common`` holds what they share.  Commands import
``common``, ``main`` imports the commands, never the reverse.
"""
