# Run by `cmake --install` and cpack (install(SCRIPT) in cmake/packaging.cmake): installs
# baton@.service with ExecStart= naming the baton binary of this prefix. Reads BATON_UNIT_TEMPLATE
# and BATON_INSTALL_BINDIR, set just before it.
#
# The unit goes where systemd looks for a package's units: /lib/systemd/system for the prefix /usr
# (Debian's place, what the .deb holds), PREFIX/lib/systemd/system otherwise (systemd reads
# /usr/local/lib/systemd/system too).
if(CMAKE_INSTALL_PREFIX STREQUAL "/usr")
  set(baton_unit_dir "/lib/systemd/system")
else()
  set(baton_unit_dir "${CMAKE_INSTALL_PREFIX}/lib/systemd/system")
endif()
if(IS_ABSOLUTE "${BATON_INSTALL_BINDIR}")
  set(BATON_BINDIR "${BATON_INSTALL_BINDIR}")
else()
  set(BATON_BINDIR "${CMAKE_INSTALL_PREFIX}/${BATON_INSTALL_BINDIR}")
endif()
set(baton_unit_out "${BATON_UNIT_STAGING}/baton@.service")
configure_file("${BATON_UNIT_TEMPLATE}" "${baton_unit_out}" @ONLY)
file(INSTALL DESTINATION "${baton_unit_dir}" TYPE FILE
     PERMISSIONS OWNER_READ OWNER_WRITE GROUP_READ WORLD_READ FILES "${baton_unit_out}")
