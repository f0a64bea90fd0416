# Artifacts are files under ARTIFACTS_DIR: no models here.
