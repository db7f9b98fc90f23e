# Installs the SDK as a CMake package: find_package(profagent) gives profagent::sdk and
# profagent_add_plugin().
include(CMakePackageConfigHelpers)
set(PROFAGENT_CMAKE_INSTALL_DIR "${CMAKE_INSTALL_LIBDIR}/cmake/profagent")
install(EXPORT profagentTargets NAMESPACE profagent:: DESTINATION "${PROFAGENT_CMAKE_INSTALL_DIR}")
configure_package_config_file(
  "${CMAKE_CURRENT_SOURCE_DIR}/cmake/profagentConfig.cmake.in"
  "${CMAKE_BINARY_DIR}/profagentConfig.cmake"
  INSTALL_DESTINATION "${PROFAGENT_CMAKE_INSTALL_DIR}")
write_basic_package_version_file("${CMAKE_BINARY_DIR}/profagentConfigVersion.cmake"
  VERSION ${PROJECT_VERSION} COMPATIBILITY SameMajorVersion)
install(FILES
  "${CMAKE_BINARY_DIR}/profagentConfig.cmake"
  "${CMAKE_BINARY_DIR}/profagentConfigVersion.cmake"
  "${CMAKE_CURRENT_SOURCE_DIR}/cmake/ProfagentPlugin.cmake"
  DESTINATION "${PROFAGENT_CMAKE_INSTALL_DIR}")
