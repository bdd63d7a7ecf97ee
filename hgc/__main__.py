"""``python -m hgc`` runs the command line."""

from hgc.cli import main

main()
