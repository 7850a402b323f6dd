// fmt's compiled part, built into baton rather than loaded from libfmt.so.
//
// Why: every `baton reload`, `status` or `stop` is a process of its own, and a shared libfmt
// brings the shared libstdc++ with it: loading, relocating and unmapping both cost about 0.5 ms
// of each command's 1.7 ms of CPU on this class of machine (bench/results/steering.md measures
// `reload --wait` end to end). With fmt and toml++ compiled in, the baton executable links the
// C++ runtime statically (src/cli/CMakeLists.txt) and loads libc alone.
//
// fmt supports this directly: without FMT_HEADER_ONLY its headers declare the out-of-line
// functions, and fmt/format-inl.h defines them; one translation unit includes it. (Making every
// unit header-only instead costs about 3.5 s of compile time per unit.) The templates that
// format.h declares `extern` are instantiated here for char, the only character type baton uses.
#include <fmt/format-inl.h>

#include <locale>

FMT_BEGIN_NAMESPACE
namespace detail {

template locale_ref::locale_ref(const std::locale& loc);
template auto locale_ref::get<std::locale>() const -> std::locale;
template auto thousands_sep_impl<char>(locale_ref) -> thousands_sep_result<char>;
template auto decimal_point_impl(locale_ref) -> char;
template void buffer<char>::append(const char*, const char*);
template void vformat_to(buffer<char>&, string_view, basic_format_args<FMT_BUFFER_CONTEXT(char)>,
                         locale_ref);

}  // namespace detail
FMT_END_NAMESPACE
