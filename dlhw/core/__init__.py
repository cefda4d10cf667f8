"""What every layer needs and no family owns: run directories, devices, caches, metrics files,
fault injection for tests, and import strings. Nothing here imports torch at module level
except :mod:`dlhw.core.devices`."""
