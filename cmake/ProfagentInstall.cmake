# Install components: `sdk` (headers, the SDK libraries, the CMake package: what a plugin author
# needs), `runtime` (profagent-run), `plugins` (the first-party plugins and the torchvision exporter).
#   cmake --install build --prefix P [--component sdk|runtime|plugins]
# Installs the SDK as a CMake package: find_package(profagent) gives profagent::sdk (LibTorch-free)
# and profagent_add_plugin(); profagent::torch, profagent::profile and profagent::prune come with it
# when LibTorch can be found, or are required by name: find_package(profagent COMPONENTS torch).
include(CMakePackageConfigHelpers)
set(PROFAGENT_CMAKE_INSTALL_DIR "${CMAKE_INSTALL_LIBDIR}/cmake/profagent")
install(EXPORT profagentSdkTargets NAMESPACE profagent:: DESTINATION "${PROFAGENT_CMAKE_INSTALL_DIR}" COMPONENT sdk)
install(EXPORT profagentTorchTargets NAMESPACE profagent:: DESTINATION "${PROFAGENT_CMAKE_INSTALL_DIR}" COMPONENT sdk)
# The package config works only installed: it is generated where find_package() does not look when
# CMAKE_PREFIX_PATH points at the build tree (no half-working build-tree package).
set(PROFAGENT_PACKAGE_STAGING "${CMAKE_BINARY_DIR}/install-package")
configure_package_config_file(
  "${CMAKE_CURRENT_SOURCE_DIR}/cmake/profagentConfig.cmake.in"
  "${PROFAGENT_PACKAGE_STAGING}/profagentConfig.cmake"
  INSTALL_DESTINATION "${PROFAGENT_CMAKE_INSTALL_DIR}")
write_basic_package_version_file("${PROFAGENT_PACKAGE_STAGING}/profagentConfigVersion.cmake"
  VERSION ${PROJECT_VERSION} COMPATIBILITY SameMajorVersion)
install(FILES
  "${PROFAGENT_PACKAGE_STAGING}/profagentConfig.cmake"
  "${PROFAGENT_PACKAGE_STAGING}/profagentConfigVersion.cmake"
  "${CMAKE_CURRENT_SOURCE_DIR}/cmake/ProfagentPlugin.cmake"
  DESTINATION "${PROFAGENT_CMAKE_INSTALL_DIR}" COMPONENT sdk)
