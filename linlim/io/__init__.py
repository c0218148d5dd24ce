"""Files in and out: pyuvdata (uvh5, calfits, beamfits), HDF5 chains, YAML configs."""
