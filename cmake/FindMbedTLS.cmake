# Find mbedTLS (Debian's libmbedtls-dev 2.28 ships no CMake config and no
# .pc file). Defines MbedTLS_FOUND, MbedTLS_VERSION and the imported targets
# MbedTLS::mbedcrypto, MbedTLS::mbedx509 and MbedTLS::mbedtls.
find_path(MbedTLS_INCLUDE_DIR NAMES mbedtls/ssl.h)
find_library(MbedTLS_LIBRARY NAMES mbedtls)
find_library(MbedX509_LIBRARY NAMES mbedx509)
find_library(MbedCrypto_LIBRARY NAMES mbedcrypto)

if(MbedTLS_INCLUDE_DIR)
  foreach(_hdr mbedtls/build_info.h mbedtls/version.h)
    if(EXISTS "${MbedTLS_INCLUDE_DIR}/${_hdr}")
      file(STRINGS "${MbedTLS_INCLUDE_DIR}/${_hdr}" _mbed_ver
        REGEX "#define MBEDTLS_VERSION_STRING +\"[0-9.]+\"")
      if(_mbed_ver)
        string(REGEX REPLACE ".*\"([0-9.]+)\".*" "\\1" MbedTLS_VERSION "${_mbed_ver}")
        break()
      endif()
    endif()
  endforeach()
endif()

include(FindPackageHandleStandardArgs)
find_package_handle_standard_args(MbedTLS
  REQUIRED_VARS MbedTLS_LIBRARY MbedX509_LIBRARY MbedCrypto_LIBRARY MbedTLS_INCLUDE_DIR
  VERSION_VAR MbedTLS_VERSION)

if(MbedTLS_FOUND)
  if(NOT TARGET MbedTLS::mbedcrypto)
    add_library(MbedTLS::mbedcrypto UNKNOWN IMPORTED)
    set_target_properties(MbedTLS::mbedcrypto PROPERTIES
      IMPORTED_LOCATION "${MbedCrypto_LIBRARY}"
      INTERFACE_INCLUDE_DIRECTORIES "${MbedTLS_INCLUDE_DIR}")
  endif()
  if(NOT TARGET MbedTLS::mbedx509)
    add_library(MbedTLS::mbedx509 UNKNOWN IMPORTED)
    set_target_properties(MbedTLS::mbedx509 PROPERTIES
      IMPORTED_LOCATION "${MbedX509_LIBRARY}"
      INTERFACE_LINK_LIBRARIES MbedTLS::mbedcrypto)
  endif()
  if(NOT TARGET MbedTLS::mbedtls)
    add_library(MbedTLS::mbedtls UNKNOWN IMPORTED)
    set_target_properties(MbedTLS::mbedtls PROPERTIES
      IMPORTED_LOCATION "${MbedTLS_LIBRARY}"
      INTERFACE_LINK_LIBRARIES MbedTLS::mbedx509)
  endif()
endif()
mark_as_advanced(MbedTLS_INCLUDE_DIR MbedTLS_LIBRARY MbedX509_LIBRARY MbedCrypto_LIBRARY)
