# What `cmake --install` puts in place besides the targets (each src/ directory installs its own),
# and the Debian packages of `cpack -G DEB`. Included by the top CMakeLists.txt.
#
# Two components, two packages:
#   runtime      -> baton         the command, its --adopt library, the man page (gzipped), bash and
#                                 zsh completions, baton@.service, the docs
#   development  -> libbaton-dev  libbaton.a, its headers, CMake package and pkg-config file
# Each package has its copyright file and changelog in /usr/share/doc/<package>/.

# --- Runtime files -------------------------------------------------------------------------------
# The man page and the changelog are compressed here, at configure time (configure_file reruns it
# when the page changes): -n keeps the time out of the .gz, so a rebuild gives the same bytes.
configure_file(${PROJECT_SOURCE_DIR}/docs/man/baton.1 ${CMAKE_BINARY_DIR}/man/baton.1 @ONLY)
execute_process(COMMAND gzip -9nc baton.1 WORKING_DIRECTORY ${CMAKE_BINARY_DIR}/man
                OUTPUT_FILE ${CMAKE_BINARY_DIR}/man/baton.1.gz COMMAND_ERROR_IS_FATAL ANY)
install(FILES ${CMAKE_BINARY_DIR}/man/baton.1.gz DESTINATION ${CMAKE_INSTALL_MANDIR}/man1)
install(FILES ${PROJECT_SOURCE_DIR}/contrib/completions/baton.bash
        DESTINATION ${CMAKE_INSTALL_DATADIR}/bash-completion/completions RENAME baton)
install(FILES ${PROJECT_SOURCE_DIR}/contrib/completions/_baton
        DESTINATION ${CMAKE_INSTALL_DATADIR}/zsh/vendor-completions)
file(GLOB BATON_DOCS ${PROJECT_SOURCE_DIR}/docs/*.md)
install(FILES ${PROJECT_SOURCE_DIR}/README.md ${BATON_DOCS} DESTINATION ${CMAKE_INSTALL_DOCDIR})
install(DIRECTORY ${PROJECT_SOURCE_DIR}/examples/kubernetes
        DESTINATION ${CMAKE_INSTALL_DOCDIR}/examples OPTIONAL)
# baton@.service: its ExecStart= is the installed binary, which only the install knows (cpack
# installs to /usr, `cmake --install --prefix P` to P), so cmake/install_unit.cmake writes it then.
install(CODE "set(BATON_UNIT_TEMPLATE \"${PROJECT_SOURCE_DIR}/contrib/systemd/baton@.service.in\")
set(BATON_INSTALL_BINDIR \"${CMAKE_INSTALL_BINDIR}\")
set(BATON_UNIT_STAGING \"${CMAKE_BINARY_DIR}/systemd\")")
install(SCRIPT ${PROJECT_SOURCE_DIR}/cmake/install_unit.cmake)

# --- Stripped as Debian strips (dh_strip) --------------------------------------------------------
# `--strip` (cpack's CPACK_STRIP_FILES too) runs a plain `strip`, which leaves the compiler's
# .comment and .note sections in the binaries and all debug information in libbaton.a. Debian's
# own packages have neither (lintian: binary-has-unneeded-section, unstripped-static-library).
install(CODE "if(CMAKE_INSTALL_DO_STRIP)
  foreach(file ${CMAKE_INSTALL_BINDIR}/baton ${CMAKE_INSTALL_LIBDIR}/baton/libbaton_adopt.so)
    execute_process(COMMAND \"${CMAKE_STRIP}\" --remove-section=.comment --remove-section=.note
                            \"\$ENV{DESTDIR}\${CMAKE_INSTALL_PREFIX}/\${file}\" COMMAND_ERROR_IS_FATAL ANY)
  endforeach()
endif()" COMPONENT runtime)
install(CODE "if(CMAKE_INSTALL_DO_STRIP)
  execute_process(COMMAND \"${CMAKE_STRIP}\" --strip-debug --remove-section=.comment
                          --remove-section=.note --enable-deterministic-archives
                          \"\$ENV{DESTDIR}\${CMAKE_INSTALL_PREFIX}/${CMAKE_INSTALL_LIBDIR}/libbaton.a\"
                  COMMAND_ERROR_IS_FATAL ANY)
endif()" COMPONENT development)

# --- Per-package documents -----------------------------------------------------------------------
# The project's identity, not a builder's: the Maintainer: field and the changelog's signature.
set(BATON_DEB_MAINTAINER "baton maintainers <baton@users.noreply.github.com>")
string(TIMESTAMP BATON_CHANGELOG_DATE "%a, %d %b %Y %H:%M:%S +0000" UTC)  # SOURCE_DATE_EPOCH wins
configure_file(${PROJECT_SOURCE_DIR}/contrib/debian/changelog.in ${CMAKE_BINARY_DIR}/debian/changelog
               @ONLY)
execute_process(COMMAND gzip -9nc changelog WORKING_DIRECTORY ${CMAKE_BINARY_DIR}/debian
                OUTPUT_FILE ${CMAKE_BINARY_DIR}/debian/changelog.gz COMMAND_ERROR_IS_FATAL ANY)
foreach(pkg IN ITEMS baton libbaton-dev)
  if(pkg STREQUAL "baton")
    set(component runtime)
  else()
    set(component development)
  endif()
  install(FILES ${PROJECT_SOURCE_DIR}/contrib/debian/copyright ${CMAKE_BINARY_DIR}/debian/changelog.gz
          DESTINATION ${CMAKE_INSTALL_DATADIR}/doc/${pkg} COMPONENT ${component})
endforeach()

# --- cpack -G DEB (in the build directory) -------------------------------------------------------
set(CPACK_PACKAGE_NAME baton)
set(CPACK_PACKAGE_VENDOR "baton")
set(CPACK_PACKAGE_CONTACT "${BATON_DEB_MAINTAINER}")
set(CPACK_DEBIAN_PACKAGE_MAINTAINER "${BATON_DEB_MAINTAINER}")
set(CPACK_PACKAGING_INSTALL_PREFIX /usr)
# CMAKE_INSTALL_PREFIX is /usr itself while cpack installs (the files go to DESTDIR), so what the
# install writes into a file (baton@.service's ExecStart=) is the path the package installs.
set(CPACK_SET_DESTDIR ON)
set(CPACK_INSTALL_PREFIX /usr)
set(CPACK_STRIP_FILES ON)
set(CPACK_GENERATOR DEB)
set(CPACK_DEB_COMPONENT_INSTALL ON)
set(CPACK_COMPONENTS_ALL runtime development)
set(CPACK_DEBIAN_FILE_NAME DEB-DEFAULT)
set(CPACK_DEBIAN_PACKAGE_PRIORITY optional)
set(CPACK_DEBIAN_PACKAGE_SHLIBDEPS ON)

set(CPACK_DEBIAN_RUNTIME_PACKAGE_NAME baton)
set(CPACK_DEBIAN_RUNTIME_PACKAGE_SECTION net)
# Our own maintainer scripts (daemon-reload for the unit) also keep cpack from adding an ldconfig
# call, which a library in a private directory (lib/baton/) has no use for.
set(CPACK_DEBIAN_RUNTIME_PACKAGE_CONTROL_EXTRA
    ${PROJECT_SOURCE_DIR}/contrib/debian/postinst ${PROJECT_SOURCE_DIR}/contrib/debian/postrm)
set(CPACK_DEBIAN_RUNTIME_PACKAGE_CONTROL_STRICT_PERMISSION ON)
set(CPACK_COMPONENT_RUNTIME_DESCRIPTION
    "restart or upgrade a network server with zero failed requests
baton run owns a server's listening sockets and runs generation after
generation of it: a new generation serves from the same sockets, and the old
one is drained only once the new one has proven it is ready. A failed new
generation leaves the old one serving.
.
This package holds the baton command, its --adopt preload library, the man
page, bash and zsh completions and the baton@.service systemd unit, which
runs baton with /etc/baton/INSTANCE.toml.")

set(CPACK_DEBIAN_DEVELOPMENT_PACKAGE_NAME libbaton-dev)
set(CPACK_DEBIAN_DEVELOPMENT_PACKAGE_SECTION libdevel)
# libbaton.a calls into libfmt: a static link needs it (pkg-config --static, find_package(fmt)).
set(CPACK_DEBIAN_DEVELOPMENT_PACKAGE_DEPENDS "libfmt-dev")
set(CPACK_COMPONENT_DEVELOPMENT_DESCRIPTION
    "client library of baton for servers (development files)
libbaton lets a server take the listening sockets baton or systemd hand it,
announce readiness, drain, and hand its sockets directly to its successor.
.
This package holds the static library, its headers, a CMake package
(find_package(baton)) and a pkg-config file (baton).")
include(CPack)
