# The C example in README.md must compile against the public headers
# (warning-free). Run by ctest as docs.readme_example.
file(READ ${LSMTP_SOURCE_DIR}/README.md readme)
string(REGEX MATCH "```c\n(.*)\n```" _ "${readme}")
set(code "${CMAKE_MATCH_1}")
string(FIND "${code}" "```" end)
if(end GREATER -1)
  string(SUBSTRING "${code}" 0 ${end} code)
endif()
if(code STREQUAL "")
  message(FATAL_ERROR "no ```c block in README.md")
endif()
file(WRITE ${WORK_DIR}/readme_example.c "#define _DEFAULT_SOURCE 1\n${code}\n")
execute_process(
  COMMAND ${CC} -std=c11 -Wall -Wextra -Wpedantic -Wshadow -Werror -fsyntax-only
          -I${LSMTP_SOURCE_DIR}/include ${WORK_DIR}/readme_example.c
  RESULT_VARIABLE rc ERROR_VARIABLE err)
if(NOT rc EQUAL 0)
  message(FATAL_ERROR "README example does not compile:\n${err}")
endif()
