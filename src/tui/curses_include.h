// curses with wide characters, without its function-like macros (they clash with C++ names).
#pragma once

#define NCURSES_NOMACROS
#define NCURSES_WIDECHAR 1
#include <curses.h>
