"""Source files as Python reads them: decoding, parsing, module names, the prefilter, directives."""
