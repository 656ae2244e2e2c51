"""`make bench`: raw helm, kubernetes.core and this collection side by side on the local cluster."""
