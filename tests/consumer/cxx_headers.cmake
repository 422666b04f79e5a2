# Every public header must be usable from C++ (extern "C", no C-only
# syntax in declarations). Run by ctest as docs.cxx_headers.
find_program(CXX NAMES c++ g++ clang++)
if(NOT CXX)
  message(FATAL_ERROR "no C++ compiler found (install g++)")
endif()
file(GLOB headers RELATIVE ${LSMTP_SOURCE_DIR}/include ${LSMTP_SOURCE_DIR}/include/lsmtp/*.h)
set(src "// generated: include every public header from C++\n")
foreach(h ${headers})
  string(APPEND src "#include <${h}>\n")
endforeach()
string(APPEND src "int main() { return lsmtp_strerror(LSMTP_OK)[0] == 's' ? 0 : 1; }\n")
file(WRITE ${WORK_DIR}/cxx_headers.cpp "${src}")
execute_process(
  COMMAND ${CXX} -std=c++11 -Wall -Wextra -Wpedantic -Werror -fsyntax-only
          -I${LSMTP_SOURCE_DIR}/include ${WORK_DIR}/cxx_headers.cpp
  RESULT_VARIABLE rc ERROR_VARIABLE err)
if(NOT rc EQUAL 0)
  message(FATAL_ERROR "public headers do not compile as C++:\n${err}")
endif()
