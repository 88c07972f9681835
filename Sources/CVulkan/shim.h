// The Vulkan API without prototypes: every entry point is looked up through
// vkGetInstanceProcAddr from libvulkan.so.1, loaded at run time, so that themis starts (on the
// CPU) where no Vulkan loader is installed.
#define VK_NO_PROTOTYPES 1
#include <vulkan/vulkan.h>
