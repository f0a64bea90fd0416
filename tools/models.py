# The tool registry is code, not data: no models here.
