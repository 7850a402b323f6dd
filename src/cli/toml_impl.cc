// toml++'s compiled part, built into baton rather than loaded from libtomlplusplus.so: see
// src/common/fmt_impl.cc for why. toml++ is made for this: with TOML_HEADER_ONLY=0 (set for every
// unit by src/cli/CMakeLists.txt) its headers only declare, and the one unit that defines
// TOML_IMPLEMENTATION before including them holds the definitions.
#define TOML_IMPLEMENTATION
#include <toml++/toml.h>
