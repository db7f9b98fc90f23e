# Installs the SDK as a CMake package: find_package(profagent) gives profagent::sdk (LibTorch-free)
# and profagent_add_plugin(); profagent::torch, profagent::profile and profagent::prune come with it
# when LibTorch can be found, or are required by name: find_package(profagent COMPONENTS torch).
include(CMakePackageConfigHelpers)
set(PROFAGENT_CMAKE_INSTALL_DIR "${CMAKE_INSTALL_LIBDIR}/cmake/profagent")
install(EXPORT profagentSdkTargets NAMESPACE profagent:: DESTINATION "${PROFAGENT_CMAKE_INSTALL_DIR}" COMPONENT sdk)
install(EXPORT profagentTorchTargets NAMESPACE profagent:: DESTINATION "${PROFAGENT_CMAKE_INSTALL_DIR}" COMPONENT sdk)
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
