/* RFC 5322 §3.4 address lists, reduced to what a sender needs: the
 * addr-specs. The text is first cut into tokens (words, quoted strings,
 * domain literals and the specials < > , : ; @ .), with comments and
 * folding whitespace dropped; the parser then walks the tokens, keeping
 * the words of the current member until a "<...>", "," ";" or ":" says
 * what they were (display name, group name or a bare address). */
#include <stdlib.h>
#include <string.h>

#include "send.h"

#define ADDR_MAX 512

typedef enum tok_type {
  T_WORD, /* atom or quoted-string (raw, quotes kept) */
  T_DLIT, /* [domain literal] */
  T_DOT, T_AT, T_LT, T_GT, T_COMMA, T_COLON, T_SEMI
} tok_type;

typedef struct tok {
  tok_type type;
  const char *p;
  size_t len;
} tok;

typedef struct toks {
  tok *v;
  size_t n, cap;
} toks;

static int push(toks *t, tok_type type, const char *p, size_t len) {
  if (t->n == t->cap) {
    size_t cap = t->cap ? t->cap * 2 : 32;
    tok *v = realloc(t->v, cap * sizeof *v);
    if (!v) return -1;
    t->v = v;
    t->cap = cap;
  }
  t->v[t->n].type = type;
  t->v[t->n].p = p;
  t->v[t->n].len = len;
  t->n++;
  return 0;
}

static int is_wsp(char c) { return c == ' ' || c == '\t' || c == '\r' || c == '\n'; }

static int is_atext(unsigned char c) {
  if (c >= 0x80) return 1; /* UTF-8 (RFC 6532) */
  if (c <= 0x20 || c == 0x7f) return 0;
  return strchr("()<>[]:;@\\,.\"", c) == NULL;
}

static int tokenize(const char *s, size_t len, toks *t, const char **err) {
  size_t i = 0;
  while (i < len) {
    const char c = s[i];
    if (is_wsp(c)) {
      i++;
    } else if (c == '(') {
      int depth = 0;
      do {
        if (s[i] == '\\') i++;
        else if (s[i] == '(') depth++;
        else if (s[i] == ')') depth--;
        i++;
      } while (depth > 0 && i < len);
      if (depth > 0) {
        *err = "unterminated comment";
        return -1;
      }
    } else if (c == '"') {
      size_t start = i++;
      while (i < len && s[i] != '"') i += s[i] == '\\' ? 2 : 1;
      if (i >= len) {
        *err = "unterminated quoted string";
        return -1;
      }
      i++;
      if (push(t, T_WORD, s + start, i - start)) goto nomem;
    } else if (c == '[') {
      size_t start = i;
      while (i < len && s[i] != ']') i += s[i] == '\\' ? 2 : 1;
      if (i >= len) {
        *err = "unterminated domain literal";
        return -1;
      }
      i++;
      if (push(t, T_DLIT, s + start, i - start)) goto nomem;
    } else if (is_atext((unsigned char)c)) {
      size_t start = i;
      while (i < len && is_atext((unsigned char)s[i])) i++;
      if (push(t, T_WORD, s + start, i - start)) goto nomem;
    } else {
      static const char specials[] = ".@<>,:;";
      static const tok_type types[] = {T_DOT, T_AT, T_LT, T_GT, T_COMMA, T_COLON, T_SEMI};
      const char *hit = strchr(specials, c);
      if (!hit || c == '\0') {
        *err = c == ')' ? "unbalanced ')'" : "unexpected character";
        return -1;
      }
      if (push(t, types[hit - specials], s + i, 1)) goto nomem;
      i++;
    }
  }
  return 0;
nomem:
  *err = "out of memory";
  return -1;
}

/* Append a token's text to out; a quoted string loses any folding
 * (CR/LF) inside it. */
static int append(char *out, size_t *o, const tok *k) {
  for (size_t i = 0; i < k->len; i++) {
    if (k->p[i] == '\r' || k->p[i] == '\n') continue;
    if (*o + 1 >= ADDR_MAX) return -1;
    out[(*o)++] = k->p[i];
  }
  return 0;
}

/* tokens [b, e) must be local-part "@" domain, with words joined by dots. */
static int emit_spec(const tok *v, size_t b, size_t e, addrlist_cb cb, void *ud,
                     const char **err) {
  char out[ADDR_MAX];
  size_t o = 0;
  int side = 0;          /* 0 local part, 1 domain */
  int want_word = 1;     /* a word must come next */
  for (size_t i = b; i < e; i++) {
    const tok *k = &v[i];
    if (k->type == T_WORD || (k->type == T_DLIT && side == 1)) {
      if (!want_word) goto bad;
      if (k->type == T_DLIT && o > 0 && out[o - 1] != '@') goto bad;
      if (append(out, &o, k)) goto long_addr;
      want_word = 0;
    } else if (k->type == T_DOT) {
      if (want_word) goto bad;
      if (append(out, &o, k)) goto long_addr;
      want_word = 1;
    } else if (k->type == T_AT) {
      if (want_word || side) goto bad;
      if (append(out, &o, k)) goto long_addr;
      side = 1;
      want_word = 1;
    } else {
      goto bad;
    }
  }
  if (!side || want_word) goto bad;
  out[o] = '\0';
  if (cb(ud, out) != 0) {
    *err = "stopped";
    return -1;
  }
  return 0;
bad:
  *err = "not an address (expected local@domain)";
  return -1;
long_addr:
  *err = "address too long";
  return -1;
}

int addrlist_parse(const char *text, size_t len, addrlist_cb cb, void *ud,
                   const char **err) {
  toks t = {NULL, 0, 0};
  int rc = tokenize(text, len, &t, err);
  size_t start = 0;     /* first token of the current member */
  int in_group = 0;
  int angled = 0;       /* the current member had its <...> */
  for (size_t i = 0; rc == 0 && i < t.n; i++) {
    const tok *k = &t.v[i];
    switch (k->type) {
    case T_LT: {
      if (angled) {
        *err = "two <...> in one address";
        rc = -1;
        break;
      }
      size_t j = i + 1, close = i + 1;
      while (close < t.n && t.v[close].type != T_GT) close++;
      if (close == t.n) {
        *err = "missing '>'";
        rc = -1;
        break;
      }
      /* obs-route: "<@a,@b:local@domain>" */
      if (j < close && t.v[j].type == T_AT) {
        while (j < close && t.v[j].type != T_COLON) j++;
        if (j == close) {
          *err = "bad route in <...>";
          rc = -1;
          break;
        }
        j++;
      }
      rc = emit_spec(t.v, j, close, cb, ud, err);
      angled = 1;
      i = close;
      break;
    }
    case T_COLON:
      if (in_group || angled) {
        *err = "unexpected ':'";
        rc = -1;
      }
      in_group = 1; /* what came before was the group's name */
      start = i + 1;
      break;
    case T_COMMA:
    case T_SEMI:
      if (k->type == T_SEMI && !in_group) {
        *err = "';' outside a group";
        rc = -1;
        break;
      }
      if (!angled && start < i) rc = emit_spec(t.v, start, i, cb, ud, err);
      if (k->type == T_SEMI) in_group = 0;
      angled = 0;
      start = i + 1;
      break;
    case T_GT:
      *err = "unexpected '>'";
      rc = -1;
      break;
    default:
      if (angled) {
        *err = "text after <...>";
        rc = -1;
      }
      break;
    }
  }
  if (rc == 0 && !angled && start < t.n) rc = emit_spec(t.v, start, t.n, cb, ud, err);
  free(t.v);
  return rc;
}
