# packaging/installed-paths.cmake - writes the installed files whose text names
# installed paths: libsmtpcert.pc (from libsmtpcert.pc.in: prefix, libdir,
# includedir) and smtpcertd.service (from packaging/smtpcertd.service: ExecStart,
# ExecStartPre).
#
# CMakeLists.txt includes it twice: at configure time, to write the build tree's
# copies (BUILD/packaging/libsmtpcert.pc and smtpcertd.service; test_privsep
# reads the unit), and from install(CODE) at install time, with the prefix being
# installed to.
# The second is what gets installed, so `cmake --install BUILD --prefix P`
# (`make install PREFIX=P`) names P even when BUILD was configured with another
# prefix. DESTDIR never enters the text: it only stages the files elsewhere.

# sc_write_installed_files(<source dir> <output dir> <prefix> <libdir> <includedir>
#                          <sbindir> <version>)
# libdir, includedir, sbindir are GNUInstallDirs values: relative to the prefix or
# absolute. Writes <output dir>/libsmtpcert.pc and <output dir>/smtpcertd.service,
# each only when its text changed, so an unchanged file stays "Up-to-date".
function(sc_write_installed_files src out prefix libdir includedir sbindir version)
  # "/" becomes "": "/sbin", not "//sbin"
  string(REGEX REPLACE "/+$" "" base "${prefix}")
  if(base STREQUAL "")
    set(SC_PC_PREFIX "/")
  else()
    set(SC_PC_PREFIX "${base}")
  endif()
  # the .pc keeps ${prefix} in libdir and includedir where it can, as pkg-config
  # files usually do (pkg-config --define-prefix relies on it)
  foreach(kind libdir includedir sbindir)
    if(IS_ABSOLUTE "${${kind}}")
      set(pc_${kind} "${${kind}}")
      set(full_${kind} "${${kind}}")
    elseif(base STREQUAL "")
      set(pc_${kind} "/${${kind}}")
      set(full_${kind} "/${${kind}}")
    else()
      set(pc_${kind} "\${prefix}/${${kind}}")
      set(full_${kind} "${base}/${${kind}}")
    endif()
  endforeach()
  set(SC_PC_LIBDIR "${pc_libdir}")
  set(SC_PC_INCLUDEDIR "${pc_includedir}")
  set(SC_PC_VERSION "${version}")
  configure_file("${src}/libsmtpcert.pc.in" "${out}/libsmtpcert.pc" @ONLY)

  # The unit in the source tree names the Debian path; the installed one names the
  # binary this install puts in place (packaging/README.md).
  file(READ "${src}/packaging/smtpcertd.service" unit)
  string(REPLACE "/usr/sbin/smtpcertd" "${full_sbindir}/smtpcertd" unit "${unit}")
  set(old "")
  if(EXISTS "${out}/smtpcertd.service")
    file(READ "${out}/smtpcertd.service" old)
  endif()
  if(NOT old STREQUAL unit)
    file(WRITE "${out}/smtpcertd.service" "${unit}")
  endif()
endfunction()
