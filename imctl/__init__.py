"""imctl: the operator's command line for Seller–Creator IM (see README "Operating it")."""
