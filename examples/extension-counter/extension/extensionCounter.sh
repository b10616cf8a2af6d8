#!/bin/bash
# FunctionGraph starts every extension/extension*.sh of a function (or of its dependencies) with
# /bin/bash in its own folder, before the runtime, with EXTENSION_API_ADDR set.
exec python3 -u ./counter.py
