# install + export so that find_package(stowage CONFIG) works after cmake --install.
include(CMakePackageConfigHelpers)
install(DIRECTORY include/ DESTINATION ${CMAKE_INSTALL_INCLUDEDIR})
set(_stowage_targets stowage)
if(TARGET stowage_boost_serializer)
  list(APPEND _stowage_targets stowage_boost_serializer)
endif()
if(TARGET stowage_json_import)
  list(APPEND _stowage_targets stowage_json_import)
endif()
foreach(_t stowage_content stowage_msgpack_serializer)
  if(TARGET ${_t})
    list(APPEND _stowage_targets ${_t})
  endif()
endforeach()
install(TARGETS ${_stowage_targets} EXPORT stowageTargets)
set(STOWAGE_CMAKE_DIR ${CMAKE_INSTALL_DATADIR}/stowage/cmake)
install(EXPORT stowageTargets NAMESPACE stowage:: DESTINATION ${STOWAGE_CMAKE_DIR})
configure_package_config_file(cmake/stowageConfig.cmake.in
  ${PROJECT_BINARY_DIR}/stowageConfig.cmake INSTALL_DESTINATION ${STOWAGE_CMAKE_DIR})
write_basic_package_version_file(${PROJECT_BINARY_DIR}/stowageConfigVersion.cmake
  COMPATIBILITY SameMajorVersion ARCH_INDEPENDENT)
install(FILES ${PROJECT_BINARY_DIR}/stowageConfig.cmake ${PROJECT_BINARY_DIR}/stowageConfigVersion.cmake
  cmake/StowageDependencies.cmake DESTINATION ${STOWAGE_CMAKE_DIR})
