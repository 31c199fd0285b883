// Qwen2 pre-tokenizer: the split regex's alternatives as hand-written matchers on code points.
#include "engine/text/tokenizers/byte_bpe_pretokenizer.h"

#include <utf8proc.h>

#include "engine/utf8.h"

namespace df::engine {

const std::string_view kQwen2SplitPattern =
    "(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}| "
    "?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+";

namespace {

bool is_letter(char32_t cp) {
  const auto category = utf8proc_category(static_cast<utf8proc_int32_t>(cp));
  return category >= UTF8PROC_CATEGORY_LU && category <= UTF8PROC_CATEGORY_LO;
}

bool is_number(char32_t cp) {
  const auto category = utf8proc_category(static_cast<utf8proc_int32_t>(cp));
  return category >= UTF8PROC_CATEGORY_ND && category <= UTF8PROC_CATEGORY_NO;
}

// The Unicode White_Space property (what `\s` matches in the tokenizers library's regex).
bool is_space(char32_t cp) {
  return (cp >= 0x09 && cp <= 0x0D) || cp == 0x20 || cp == 0x85 || cp == 0xA0 || cp == 0x1680 ||
         (cp >= 0x2000 && cp <= 0x200A) || cp == 0x2028 || cp == 0x2029 || cp == 0x202F ||
         cp == 0x205F || cp == 0x3000;
}

bool is_line_break(char32_t cp) { return cp == '\r' || cp == '\n'; }

// A character of `[^\s\p{L}\p{N}]`.
bool is_symbol(char32_t cp) { return !is_space(cp) && !is_letter(cp) && !is_number(cp); }

char32_t ascii_lower(char32_t cp) { return cp >= 'A' && cp <= 'Z' ? cp + ('a' - 'A') : cp; }

using Text = std::u32string_view;

size_t skip_while(Text text, size_t i, bool (*accept)(char32_t)) {
  while (i < text.size() && accept(text[i])) ++i;
  return i;
}

// Alternative 1: length of a contraction at `i`, or 0.
size_t contraction(Text text, size_t i) {
  if (text[i] != '\'' || i + 1 >= text.size()) return 0;
  const char32_t first = ascii_lower(text[i + 1]);
  if (first == 's' || first == 't' || first == 'm' || first == 'd') return 2;
  if (i + 2 >= text.size()) return 0;
  const char32_t second = ascii_lower(text[i + 2]);
  const bool two_letters = (first == 'r' && second == 'e') || (first == 'v' && second == 'e') ||
                           (first == 'l' && second == 'l');
  return two_letters ? 3 : 0;
}

// Alternative 2: end of `[^\r\n\p{L}\p{N}]?\p{L}+` at `i`, or `i` when it does not match.
size_t letter_run(Text text, size_t i) {
  if (is_letter(text[i])) return skip_while(text, i, is_letter);
  const bool prefix = !is_line_break(text[i]) && !is_number(text[i]);
  if (prefix && i + 1 < text.size() && is_letter(text[i + 1])) {
    return skip_while(text, i + 1, is_letter);
  }
  return i;
}

// Alternative 4: end of ` ?[^\s\p{L}\p{N}]+[\r\n]*` at `i`, or `i`.
size_t symbol_run(Text text, size_t i) {
  size_t start = i;
  if (text[i] == ' ' && i + 1 < text.size() && is_symbol(text[i + 1])) start = i + 1;
  if (!is_symbol(text[start])) return i;
  const size_t end = skip_while(text, start, is_symbol);
  return skip_while(text, end, is_line_break);
}

// Alternatives 5-7 on the whitespace run starting at `i`.
size_t space_run(Text text, size_t i) {
  const size_t end = skip_while(text, i, is_space);
  for (size_t k = end; k > i; --k) {
    if (is_line_break(text[k - 1])) return k;  // 5: through the run's last CR/LF
  }
  if (end == text.size() || end - i == 1) return end;  // 6 at the end of text, else 7
  return end - 1;  // 6: the last space goes with what follows
}

// End of the piece starting at `i` (always > i).
size_t piece_end(Text text, size_t i) {
  if (const size_t length = contraction(text, i)) return i + length;
  if (const size_t end = letter_run(text, i); end > i) return end;
  if (is_number(text[i])) return i + 1;
  if (const size_t end = symbol_run(text, i); end > i) return end;
  return space_run(text, i);
}

}  // namespace

std::vector<std::string> qwen2_pre_tokenize(std::u32string_view text) {
  std::vector<std::string> pieces;
  for (size_t i = 0; i < text.size();) {
    const size_t end = piece_end(text, i);
    pieces.push_back(encode_utf8(text.substr(i, end - i)));
    i = end;
  }
  return pieces;
}

}  // namespace df::engine
